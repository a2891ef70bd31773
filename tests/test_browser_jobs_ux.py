"""The studio as a person meets it, in chromium at 1280x800 against the real app (`python app.py` and its
worker): Distill's method, steps and Launch are on the first screen with the study folded away; a refusal is
said once; a DFD run too short for its data_forcing_prob is warned about before Launch, and Jobs then says on
how many student updates a real clip was used; the Jobs state pill is readable in the dark theme; Publish
previews that run's card, its samples' captions whole, exports its zip without a repo id, and shows them all
again after a reload. Screenshots go to $DFD_STUDIO_SCREENSHOTS when set (docs/screenshots)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from browser_app import (  # noqa: F401 (browser, page, server, shots: fixtures)
    CHROMIUM,
    browser,
    contrast,
    expect,
    in_first_screen,
    jobs_in,
    new_page,
    open_tab,
    page,
    screenshot,
    server,
    set_number,
    shots,
)
from conftest import wait_for

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def check_text(page) -> str:
    return page.locator("#distill-check").inner_text()


def test_method_steps_and_launch_are_on_the_first_screen(page, shots):
    open_tab(page, "Distill")
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('Ready')")
    for part in ("#distill-start", "#distill-method", "#distill-steps", "#distill-launch", "#distill-check"):
        assert in_first_screen(page, part), f"{part} is not on the first screen at 1280x800"
    assert "Start here" in page.locator("#distill-start").inner_text()
    # The study's figures and the run-config drop area are folded away until asked for.
    assert not page.get_by_text("Run config", exact=True).is_visible()
    assert not page.locator("#distill-when-dfd").get_by_text("p=", exact=False).first.is_visible()
    page.get_by_label("DFD on a DMD2 student").check()
    page.locator("#distill-init").wait_for(state="visible")
    assert in_first_screen(page, "#distill-init") and in_first_screen(page, "#distill-launch")
    page.get_by_label("DMD2 from the teacher").check()
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('DMD2 on')")
    page.mouse.move(0, 0)
    page.wait_for_timeout(1000)  # the radio's dot is drawn by a transition
    screenshot(page, shots / "distill.png", full_page=False)


def test_a_refusal_is_said_once(page, server):
    _, data_dir = server
    open_tab(page, "Distill")
    set_number(page, "distill-data_forcing_prob", "1.5")
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('data_forcing_prob')")
    page.locator("#distill-launch").click()
    page.wait_for_timeout(2000)
    said = page.locator("#distill-check").inner_text() + page.locator("#distill-launched").inner_text()
    assert said.count("Cannot launch") == 1, said
    assert jobs_in(data_dir) == []
    set_number(page, "distill-data_forcing_prob", "0.5")


def test_a_short_dfd_run_is_warned_and_jobs_count_its_real_clips(page, server, shots):
    _, data_dir = server
    open_tab(page, "Distill")
    page.get_by_label("DFD on a DMD2 student").check()
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('DFD')")
    set_number(page, "distill-steps", "30")  # 6 student updates at p 0.5: about 3 use a real clip
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('Too short for DFD')")
    assert "about 3.0 of its 6 student updates" in check_text(page)
    assert in_first_screen(page, "#distill-check")
    set_number(page, "distill-steps", "100")  # 20 updates: about 10 use one
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('100 steps')")
    assert "Too short" not in check_text(page)
    for name, value in {"steps": "4", "batch_size": "2", "student_update_freq": "2"}.items():
        set_number(page, f"distill-{name}", value)
    # every field's update in, not only the first's: Launch reads the form as it is when clicked
    page.wait_for_function(
        "() => document.querySelector('#distill-check').innerText.includes('4 steps (2 student updates), batch 2')"
    )
    page.locator("#distill-launch").click()
    [job] = wait_for(lambda: jobs_in(data_dir), 20, "the job row")
    wait_for(lambda: jobs_in(data_dir)[0].state in ("succeeded", "failed"), 240, "the DFD job to finish")
    assert jobs_in(data_dir)[0].state == "succeeded", jobs_in(data_dir)[0].error
    page.wait_for_function(
        "() => document.querySelector('#job-header') &&"
        " document.querySelector('#job-header').innerText.includes('succeeded')",
        timeout=30_000,
    )
    for part in ("real clip used on", "of 2 student updates"):
        expect(page.locator("#job-header")).to_contain_text(part, use_inner_text=True)
    # Previews: a poster frame each (no grey play icon), and captions whole, so seeds can be told apart.
    page.locator("#job-previews video[poster]").first.wait_for(state="attached", timeout=30_000)
    poster = page.locator("#job-previews video").first.get_attribute("poster")
    assert page.request.get(server[0] + poster).ok
    captions = page.locator("#job-previews figcaption").all_inner_texts()
    assert captions and all(re.search(r"\(seed \d+\)$", c) for c in captions), captions
    assert len(set(captions)) == len(captions)
    screenshot(page, shots / "jobs.png")


def test_the_state_pill_is_readable_in_both_themes(browser, server, shots):
    if not jobs_in(server[1]):  # run alone, without the job of the test before: a short one to show
        import engine.jobs  # the job API, needed only when this test runs alone

        short = {"method": "dmd2", "steps": 2, "batch_size": 2, "student_update_freq": 2}
        engine.jobs.submit(server[1], "distill", short)
    for dark in (False, True):
        page = new_page(browser, server[0], dark=dark)
        try:
            open_tab(page, "Jobs")
            page.locator("#jobs-table .dfd-state").first.wait_for(timeout=30_000)
            ratio = contrast(page, "#jobs-table .dfd-state")
            assert ratio >= 4.5, f"state pill contrast {ratio:.2f} in the {'dark' if dark else 'light'} theme"
            if dark:
                screenshot(page, shots / "jobs-dark.png")
        finally:
            page.close()


# the sample captions under the players, each with whether it shows whole (nothing cut or hidden past its box)
SAMPLE_CAPTIONS = """() => [...document.querySelectorAll('#publish-samples figcaption')].map(e => [e.innerText,
    e.offsetParent !== null && e.scrollWidth <= e.clientWidth + 1 && e.scrollHeight <= e.clientHeight + 1])"""


def finished_dfd_job(data_dir: Path):
    """The DFD job the Distill test above launched, or, when Publish's tests run without it, the same short DFD
    run queued here from the base's first DMD2 student and waited for."""
    dfd = [j for j in jobs_in(data_dir) if j.config.get("method") == "dfd"]
    if not dfd:
        import engine.jobs  # the job API and the page's student list, needed only when these run alone
        from studio import lineup

        first = lineup.students(data_dir, "shapes-tiny", "dmd2")[0]
        short = {"method": "dfd", "init": str(first.lora_dir), "steps": 4, "batch_size": 2, "student_update_freq": 2}
        engine.jobs.submit(data_dir, "distill", short)
        dfd = wait_for(lambda: [j for j in jobs_in(data_dir) if j.config.get("method") == "dfd"], 20, "the job row")
    wait_for(lambda: engine_state(data_dir, dfd[0].id) in ("succeeded", "failed"), 240, "the DFD job to finish")
    [job] = [j for j in jobs_in(data_dir) if j.id == dfd[0].id]
    assert job.state == "succeeded", job.error
    return job


def engine_state(data_dir: Path, job_id: str) -> str:
    return next(j.state for j in jobs_in(data_dir) if j.id == job_id)


def test_publish_previews_and_exports_without_a_repo_id(page, server, shots):
    job = finished_dfd_job(server[1])
    open_tab(page, "Publish")
    page.locator("#publish-student input").click()
    page.get_by_role("option", name=re.compile(job.id)).click()
    page.locator("#publish-preview").click()
    page.wait_for_function("() => document.querySelector('#publish-card').innerText.includes('Usage')", timeout=240_000)
    card = page.locator("#publish-card").inner_text()
    assert "real clip used" in card and "of 2 student updates" in card
    assert "the DMD2 student" in card and "your-name/dfd-studio-" in card
    expect(page.locator("#publish-status")).to_contain_text("until you type a repo id", use_inner_text=True)
    assert "final validity gap (real_gap)" in card and "final real_gap" not in card
    # the samples' captions whole, so prompts and seeds can be told apart; a poster frame on each player
    page.wait_for_function(f"() => ({SAMPLE_CAPTIONS})().length === 4")  # the players come after the card
    captions = page.evaluate(SAMPLE_CAPTIONS)
    assert len(captions) == 4 and all(whole for _, whole in captions), captions
    texts = [text for text, _ in captions]
    assert all(re.search(r"^a .+ \(seed \d\)$", t) for t in texts) and len(set(texts)) == 4, texts
    expect(page.locator("#publish-samples video[poster]")).to_have_count(4)
    page.locator("#publish-export").click()
    page.locator("#publish-zip a").first.wait_for(state="attached", timeout=60_000)
    screenshot(page, shots / "publish.png")


def test_a_reload_keeps_publish_on_its_last_card_samples_and_zip(page, server):
    job = finished_dfd_job(server[1])
    open_tab(page, "Publish")
    page.wait_for_function("() => document.querySelector('#publish-card').innerText.includes('Usage')")
    page.wait_for_function(f"() => ({SAMPLE_CAPTIONS})().length === 4")  # the players come after the card
    card, captions = page.locator("#publish-card").inner_text(), page.evaluate(SAMPLE_CAPTIONS)
    page.reload()
    page.get_by_text("DFD Studio").first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim() === 'Publish'"
    )
    page.wait_for_function("() => document.querySelector('#publish-card').innerText.includes('Usage')", timeout=60_000)
    assert page.locator("#publish-card").inner_text() == card
    page.wait_for_function(f"(shown) => JSON.stringify(({SAMPLE_CAPTIONS})()) === JSON.stringify(shown)", arg=captions)
    expect(page.locator("#publish-student input")).to_have_value(re.compile(job.id))
    expect(page.locator("#publish-status")).to_contain_text("until you type a repo id", use_inner_text=True)
    page.locator("#publish-zip a").first.wait_for(state="attached", timeout=30_000)  # the export, still there
