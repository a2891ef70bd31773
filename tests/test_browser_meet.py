"""The studio as a person meets it: the real app (`python app.py`, with its worker) in Debian's chromium at
1280 x 800, light and dark, through Playwright. A base picked from Compare's list shows its students at
once; a refused Compare is one lasting line under the button, with no 'Error' badge on the outputs; the
teacher's CFG is the one the students were distilled with; the composite's and grids' labels are not under a
player badge, nor the grids' last header under the players' buttons; Diversity's table says which way is
better, how many modes there could be, is not cut before the first run, and has a chart per metric on its own
axis; a reload stays on the tab and shows the last results. Screenshots go to $DFD_STUDIO_SCREENSHOTS when set
(e.g. docs/screenshots)."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_app import (  # noqa: F401 (browser, page, server, shots: fixtures)
    CHROMIUM,
    browser,
    expect,
    new_page,
    open_tab,
    page,
    screenshot,
    server,
    set_number,
    shots,
    wait_for_tab_in_address,
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")

# gradio's status tracker marks every output of a callback that raised with this badge
ERROR_BADGES = (
    "() => [...document.querySelectorAll('.error')]"
    ".filter(e => e.offsetParent && e.innerText.trim() === 'Error').length"
)
# header words that do not show whole: cut off past the cell's edge, or broken across two lines
CUT_HEADERS = r"""() => {
  const cut = [];
  for (const th of document.querySelectorAll('#diversity-table th')) {
    if (!th.offsetParent) continue;
    for (const e of [th, ...th.querySelectorAll('*')]) {
      if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 && e.innerText.trim()) cut.push(e.innerText.trim());
    }
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) cut.push(m[0]);
      }
    }
  }
  return cut;
}"""
# a player's own buttons (download, fullscreen, share) drawn over its video or image, where the grids' headers are
OVER_THE_PICTURE = """(sel) => {
  const root = document.querySelector(sel);
  const m = root.querySelector('video, img').getBoundingClientRect();
  return [...root.querySelectorAll('.icon-button')].filter(e => e.offsetParent).map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 && r.left < m.right && r.right > m.left && r.top < m.bottom && r.bottom > m.top).length;
}"""
# a player's label badge, drawn over the top left of the video or image
BADGES = "() => [...document.querySelectorAll('#{} [data-testid=\"block-label\"]')].filter(e => e.offsetParent).length"


def base_box(page, tab: str):
    return page.locator(f"#{tab}-base input").first


def test_before_the_first_run_diversity_shows_no_squeezed_empty_table(page, shots):
    open_tab(page, "Diversity")
    page.locator("#diversity-run").wait_for(state="visible")
    page.wait_for_function("() => document.querySelectorAll('#diversity-models input:checked').length >= 3")
    assert not page.locator("#diversity-table").is_visible()  # it comes with the first result, sized to it
    screenshot(page, shots / "diversity-empty.png")


def test_a_picked_base_lists_its_students_at_once(page):
    open_tab(page, "Compare")
    base_box(page, "compare").click()
    page.get_by_role("option", name="shapes-tiny-i2v", exact=True).click()  # no Enter: picked from the list
    for slot in ("dmd2", "dfd"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-student input').value.includes('{slot}-i2v')",
            timeout=30_000,
        )
    base_box(page, "compare").click()
    page.get_by_role("option", name="shapes-tiny", exact=True).click()  # back, for the tests below
    page.wait_for_function(
        "() => document.querySelector('#compare-dmd2-student input').value === 'DMD2 (shipped)'", timeout=30_000
    )


def test_a_refused_compare_is_one_lasting_line_without_error_badges(page, shots):
    open_tab(page, "Compare")
    box = base_box(page, "compare")
    box.fill("no-such-model")  # typed, not confirmed with Enter: the Compare click takes it as it is
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-error').innerText.includes('Cannot compare')", timeout=30_000
    )
    error = page.locator("#compare-error").inner_text()
    assert "no-such-model" in error, error
    page.wait_for_timeout(6000)  # longer than a toast stays: the line is still there, and no output is marked
    assert "no-such-model" in page.locator("#compare-error").inner_text()
    assert page.evaluate(ERROR_BADGES) == 0
    expect(page.locator("#compare-teacher-caption")).to_contain_text("NFE", use_inner_text=True)  # the last result kept
    screenshot(page, shots / "compare-refused.png")
    box.fill("shapes-tiny")
    box.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#compare-dmd2-student input').value === 'DMD2 (shipped)'", timeout=30_000
    )


def test_the_teacher_is_sampled_at_the_cfg_the_students_were_distilled_with(page, shots):
    open_tab(page, "Compare")
    page.get_by_text("Sampling and where to run").click()
    slider = page.locator("#compare-guidance")
    page.wait_for_function("() => [...document.querySelectorAll('#compare-guidance input')].some(i => i.value === '3')")
    expect(slider).to_contain_text("distilled from the teacher at CFG 3", use_inner_text=True)
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-teacher-caption').innerText.includes('CFG 3')", timeout=120_000
    )
    page.locator("#compare-composite video").wait_for(state="attached")  # drawn, before its labels are counted
    assert page.evaluate(BADGES.format("compare-composite")) == 0  # nothing over the teacher's label
    page.get_by_text("Sampling and where to run").click()
    screenshot(page, shots / "compare.png")


def test_diversity_says_which_way_is_better_and_charts_each_metric_on_its_own_axis(page, shots):
    open_tab(page, "Diversity")
    page.wait_for_function("() => document.querySelectorAll('#diversity-models input:checked').length >= 3")
    set_number(page, "diversity-seeds", "4")
    page.locator("#diversity-run").click()
    page.wait_for_function(
        "() => document.querySelector('#diversity-table')?.innerText.includes('teacher')", timeout=180_000
    )
    table = page.locator("#diversity-table").inner_text()
    for header in ("diversity ↑", "modes covered ↑ (of 4)", "mode TV ↓", "saturation"):  # "a shape" names nothing
        assert header in table, (header, table)
    assert page.evaluate(CUT_HEADERS) == []
    expect(page.locator("#diversity-note")).to_contain_text("Modes covered is out of 4", use_inner_text=True)
    for metric in ("diversity", "modes-covered", "mode-TV", "motion", "saturation"):
        page.locator(f"#diversity-bars-{metric}").wait_for(state="visible")
    # its own axis: the motion chart's top tick is near its largest bar, not a shared 0-1
    ticks = page.wait_for_function(  # the chart draws its axis after the container shows
        "() => { const v = [...document.querySelectorAll('#diversity-bars-motion .role-axis-label text')]"
        ".map(t => parseFloat(t.textContent)).filter(v => !isNaN(v)); return v.length ? v : null; }"
    ).json_value()
    assert ticks and max(ticks) < 1, ticks
    for element in ("diversity-grid", "diversity-stills"):
        assert page.evaluate(BADGES.format(element)) == 0, element  # nothing over 'seed 1'
    for width in (1280, 800):  # narrower, the stills fill the width and their top right corner is the last header
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(500)
        for element in ("diversity-grid", "diversity-stills"):
            page.locator(f"#{element}").hover()  # the buttons show
            assert page.evaluate(OVER_THE_PICTURE, f"#{element}") == 0, (element, width)  # nothing over 'seed N'
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, shots / "diversity.png")


def test_a_reload_stays_on_the_tab_and_shows_the_last_results(page, shots):
    open_tab(page, "Diversity")
    wait_for_tab_in_address(page, "diversity")  # the address is rewritten after the click, not with it
    if not page.locator("#diversity-table").is_visible():  # run alone, without the previous test's results
        set_number(page, "diversity-seeds", "4")
        page.locator("#diversity-run").click()
        page.wait_for_function(
            "() => document.querySelector('#diversity-table')?.innerText.includes('teacher')", timeout=180_000
        )
    grid_src = "() => document.querySelector('#diversity-grid video')?.src || null"
    grid = page.wait_for_function(grid_src).json_value()  # the player's address is set after the table's text
    page.reload()
    page.wait_for_function(
        "() => document.querySelector('#diversity-table')?.innerText.includes('teacher')", timeout=120_000
    )
    expect(page.get_by_role("tab", name="Diversity", exact=True)).to_have_attribute("aria-selected", "true")
    page.wait_for_function(f"(grid) => ({grid_src})() === grid", arg=grid)
    expect(page.locator("#diversity-table")).to_contain_text("modes covered ↑ (of 4)", use_inner_text=True)

    open_tab(page, "Compare")
    page.wait_for_function("() => document.querySelector('#compare-teacher-caption').innerText.includes('CFG 3')")
    open_tab(page, "Jobs")
    wait_for_tab_in_address(page, "jobs")  # the address is rewritten after the click, not with it
    page.reload()
    page.get_by_text("DFD Studio").first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim() === 'Jobs'"
    )


def test_dark_mode_shows_the_same_page_readably(browser, server, shots):
    page = new_page(browser, server[0], dark=True, query="tab=diversity")
    try:
        page.wait_for_function(
            "() => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim() === 'Diversity'",
            timeout=120_000,
        )
        page.locator("#diversity-run").wait_for(state="visible")
        assert not page.locator("#diversity-table").is_visible()
        screenshot(page, shots / "diversity-dark.png")
    finally:
        page.close()
