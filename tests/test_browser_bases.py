"""Bases other than the built-in text-to-video teacher, in Debian's chromium through Playwright against the real
app (`python app.py`, with its worker): Diversity measures a tiny random Wan base (through a sample job) with
the tiny CLIP and DINOv2 models typed on the page; Compare streams the shipped causal students past their
training length, and samples the built-in image-to-video teacher and its shipped students from the world's
first frame. Screenshots go to $DFD_STUDIO_SCREENSHOTS when set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browser_app import (  # noqa: F401 (browser, page, server, shots: fixtures)
    CHROMIUM,
    browser,
    expect,
    jobs_in,
    open_tab,
    page,
    screenshot,
    server,
    set_number,
    shots,
)
from engine import read_mp4
from studio.files import public_folder

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def small_wan_and_encoders(tiny_wan_dir, tmp_path_factory):
    """The tiny random Wan pipeline at 5 frames of 32 x 32 (its dfd_studio.json) and tiny random CLIP and
    DINOv2 folders of the real classes: a base outside the shapes world and the feature models it needs."""
    import shutil

    from test_features import save_tiny_encoders

    root = tmp_path_factory.mktemp("non-shapes")
    shutil.copytree(tiny_wan_dir, root / "wan")
    (root / "wan" / "dfd_studio.json").write_text(json.dumps({"num_frames": 5, "height": 32, "width": 32, "fps": 16}))
    return root / "wan", save_tiny_encoders(root / "encoders")


def test_diversity_measures_a_wan_base_with_the_feature_models_typed_on_the_page(
    page, server, shots, small_wan_and_encoders
):
    _, data_dir = server
    wan, encoders = small_wan_and_encoders
    open_tab(page, "Diversity")
    base = page.locator("#diversity-base textarea, #diversity-base input").first
    base.fill(str(wan))
    base.press("Enter")  # lists this base's models (the teacher only) and turns Run as sample jobs on
    page.wait_for_function("() => document.querySelector('#diversity-as-jobs input').checked")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#diversity-models input')].map(i => i.checked).join() === 'true'"
    )
    set_number(page, "diversity-seeds", "2")
    page.locator("#diversity-features textarea, #diversity-features input").first.fill(
        f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"
    )
    page.locator("#diversity-run").click()

    page.wait_for_function(
        "() => document.querySelector('#diversity-note').innerText.includes('Diversity by clip:')", timeout=120_000
    )  # the worker sampled, the page measured
    assert [j.kind for j in jobs_in(data_dir) if j.config.get("base") == str(wan)] == ["sample"]
    page.locator("#diversity-grid video").wait_for(state="attached")
    table = page.locator("#diversity-table").inner_text()
    for column in ("diversity clip", "diversity dinov2", "adherence", "saturation", "motion"):
        assert column in table, column
    assert "modes covered" not in table and "named correct" not in table  # the shapes recognizer's alone
    head, values = table.split("\nteacher\n", 1)  # the table reads one cell a line: headers, then the row
    headers = [line.strip().rstrip(" ↑↓") for line in head.splitlines() if line.strip()][1:]  # names, not arrows
    row = dict(zip(headers, ["teacher", *map(float, values.split())], strict=True))
    assert row["NFE"] == 100 and 0 <= row["diversity clip"] <= 1 and 0 <= row["diversity dinov2"] <= 1, row
    assert -1 <= row["adherence"] <= 1 and row["saturation"] > 0 and row["motion"] > 0, row
    page.locator("#diversity-bars-adherence").wait_for(state="visible")
    screenshot(page, shots / "diversity-wan.png")


def test_compare_streams_the_shipped_causal_students_at_65_frames_with_their_first_chunk_time(page, server, shots):
    """The shipped causal students of shapes-tiny (trained on 17 frames), picked in Compare's DMD2 and DFD boxes
    with Video frames 65, sample chunk by chunk in the web process, rolling their KV cache on past the training
    length; under each clip its time to the first chunk and frames per second; every clip is 65 frames."""
    open_tab(page, "Compare")
    for slot, name in (("dmd2", "dmd2-ar"), ("dfd", "dfd-ar")):
        page.locator(f"#compare-{slot}-student input").click()
        page.get_by_role("option", name=re.compile(f"causal .* · {name} \\(shipped\\)")).click()
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-student input').value.includes('{name}')"
        )
    # the frame count last, just before Compare: picking a student updates the form (the teacher's CFG follows
    # the students), and on a loaded machine that update has landed after the count was typed and put the box
    # back to 0; the count is typed again until it holds for a second
    page.get_by_text("Sampling and where to run").click()
    frames = page.locator("#compare-frames input")
    for _ in range(10):
        frames.fill("65")
        frames.press("Tab")
        page.wait_for_timeout(1000)
        if frames.input_value() == "65":
            break
    assert frames.input_value() == "65"
    page.locator("#compare-run").click()
    for slot in ("dmd2", "dfd"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-caption').innerText.includes('first chunk')",
            timeout=120_000,
        )
        assert "frames/s" in page.locator(f"#compare-{slot}-caption").inner_text()
    assert "first chunk" not in page.locator("#compare-teacher-caption").inner_text()  # the bidirectional teacher
    expect(page.locator("#compare-note")).to_contain_text("65 frames", use_inner_text=True)
    _, data_dir = server
    [shown] = [
        m.parent
        for m in (public_folder(data_dir) / "compare").glob("*/meta.json")
        if json.loads(m.read_text())["frames"] == 65
    ]
    for slot in ("teacher", "dmd2", "dfd"):
        assert read_mp4(shown / f"{slot}.mp4").shape[0] == 65, slot
    screenshot(page, shots / "compare-causal.png")


def test_compare_samples_the_built_in_i2v_teacher_and_its_shipped_students_from_a_world_frame(page, server, shots):
    """The built-in image-to-video base typed in Compare lists its shipped DMD2 and DFD students; "Frame from the
    world" fills the first frame with the world's frame for the prompt; Compare samples all three from it in the
    web process (the built-in world on a CPU) and says so."""
    _, data_dir = server
    open_tab(page, "Compare")
    box = page.locator("#compare-base textarea, #compare-base input").first
    box.fill("shapes-tiny-i2v")
    box.press("Enter")  # lists this base's students and shows the First frame box and its world button
    for slot in ("dmd2", "dfd"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-student input').value.includes('{slot}-i2v')",
            timeout=30_000,
        )
    page.locator("#compare-world-frame").click()
    page.locator("#compare-frame img").first.wait_for(state="attached", timeout=30_000)
    sources = "() => ['teacher', 'dmd2', 'dfd'].map(s => document.querySelector(`#compare-${s} video`)?.src ?? null)"
    before = page.evaluate(sources)  # the text-to-video teacher's clips, shown since the page opened
    page.locator("#compare-run").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-note').innerText.includes('all from the same first frame')",
        timeout=300_000,
    )
    # the players' addresses are set a moment after the note's text: wait for all three to change
    after = page.wait_for_function(
        f"(before) => {{ const now = ({sources})(); return now.every((s, i) => s && s !== before[i]) && now; }}",
        arg=before,
    ).json_value()
    for slot, old, new in zip(("teacher", "dmd2", "dfd"), before, after):
        assert new and new != old, (slot, old, new)
        expect(page.locator(f"#compare-{slot}-caption")).to_contain_text("NFE", use_inner_text=True)
    expect(page.locator("#compare-dmd2-caption")).to_contain_text("dmd2-i2v", use_inner_text=True)
    expect(page.locator("#compare-dfd-caption")).to_contain_text("dfd-i2v", use_inner_text=True)
    page.locator("#compare-composite video").wait_for(state="attached")
    assert not [j for j in jobs_in(data_dir) if j.kind == "sample" and j.config.get("base") == "shapes-tiny-i2v"]
    frames_kept = list((data_dir / "uploads" / "frames").glob("*.png"))
    assert len(frames_kept) == 1 and frames_kept[0].with_suffix(".json").is_file()  # the world's frame, its factors
    screenshot(page, shots / "compare-i2v.png")
