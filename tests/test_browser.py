"""The real app on 127.0.0.1 (`python app.py`, with its worker) driven by Debian's chromium through
Playwright: an invalid form is explained, a short DMD2 job is launched and watched to the end, a DFD job
starts from it, Compare shows three videos, Diversity its grids and table, Publish a card; nothing outside
the public folder can be downloaded over HTTP; and Diversity measures a tiny random Wan base (through a sample
job) with the tiny CLIP and DINOv2 models typed on the page; Compare streams the shipped causal students and
samples the built-in image-to-video teacher and its shipped students from the world's first frame. A screenshot
of each tab is saved (to $DFD_STUDIO_SCREENSHOTS when set, e.g. docs/screenshots)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from conftest import wait_for as wait_until
from engine import read_mp4
from studio.files import public_folder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHORT_JOB = {"steps": "2", "batch_size": "2", "student_update_freq": "2"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` with its worker on a fresh data folder; stopped (worker included) afterwards."""
    data_dir = tmp_path_factory.mktemp("studio_data")
    port = _free_port()
    log = open(data_dir.parent / "server.log", "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited early:\n{(data_dir.parent / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        else:
            raise RuntimeError("app did not answer within 120 s")
        yield url, data_dir
    finally:
        proc.terminate()  # app.py stops its worker on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_text("DFD Studio").first.wait_for()
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DFD_STUDIO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def jobs_in(data_dir: Path) -> list:
    import engine.jobs

    return engine.jobs.list_jobs(data_dir) if (data_dir / "studio.db").exists() else []


def screenshot(page, path: Path) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(300)  # let transitions (radio dots, plots) settle
    page.screenshot(path=str(path), full_page=True)


def set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(value)
    box.press("Tab")


def test_the_page_opens_on_compare_with_the_built_in_teachers_sample(page):
    video = page.locator("#compare-teacher video")
    video.wait_for(state="attached", timeout=120_000)
    assert "NFE 100" in page.locator("#compare-teacher-caption").inner_text()
    from engine.models.students import shipped_students

    shipped = {s.method for s in shipped_students() if s.base == "shapes-tiny"}
    for method, name in (("dmd2", "DMD2"), ("dfd", "DFD")):  # shipped students are compared from the start
        caption = page.locator(f"#compare-{method}-caption").inner_text()
        assert ("NFE 4" in caption) if method in shipped else (f"No {name} student" in caption), caption


def test_an_invalid_form_is_explained_inline_and_nothing_is_queued(page, server, shots):
    _, data_dir = server
    open_tab(page, "Distill")
    page.get_by_text("DMD2 from the teacher", exact=True).click()
    set_number(page, "distill-data_forcing_prob", "1.5")  # a probability above 1
    check = page.locator("#distill-check")
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('data_forcing_prob')")
    page.locator("#distill-launch").click()
    page.wait_for_timeout(1500)  # the refusal is said once, in the check line (tests/test_browser_jobs_ux.py)
    assert "Cannot launch" not in page.locator("#distill-launched").inner_text()
    assert "data_forcing_prob must be in [0, 1]" in check.inner_text()
    screenshot(page, shots / "distill-invalid.png")
    assert jobs_in(data_dir) == []
    set_number(page, "distill-data_forcing_prob", "0.5")  # the page is shared with the next tests


def test_a_short_dmd2_job_is_launched_watched_and_finishes(page, server, shots):
    _, data_dir = server
    open_tab(page, "Distill")
    page.get_by_text("DMD2 from the teacher", exact=True).click()
    for name, value in SHORT_JOB.items():
        set_number(page, f"distill-{name}", value)
    page.wait_for_function(
        "() => document.querySelector('#distill-check').innerText.includes('2 steps (1 student update), batch 2')"
    )
    screenshot(page, shots / "distill.png")
    page.locator("#distill-launch").click()

    [job] = wait_until(lambda: jobs_in(data_dir), 20, "the job row")
    assert job.config["steps"] == 2 and job.config["method"] == "dmd2"
    page.locator("#jobs-table").get_by_text(job.id).wait_for(timeout=20_000)  # the Jobs tab opened on it

    seen = set()

    def finished():
        text = page.locator("#jobs-table").inner_text()
        seen.update(m for m in ("queued", "running", "1/2", "succeeded") if m in text)
        return "succeeded" in text or "failed" in text

    wait_until(finished, 150, "the job to finish", every=0.3)
    assert "succeeded" in seen, page.locator("#job-header").inner_text() + page.locator("#job-log").inner_text()
    assert seen & {"running", "1/2"}, seen  # progress was seen moving before the end
    page.locator("#job-previews video, #job-previews img").first.wait_for(state="attached", timeout=30_000)
    page.locator("#job-losses").wait_for(state="visible", timeout=30_000)
    assert "100%" in page.locator("#job-header").inner_text()
    assert page.locator("#worker-health").inner_text().startswith("worker: running (pid ")  # app.py's worker
    screenshot(page, shots / "jobs.png")


def test_a_dfd_job_starts_from_the_finished_dmd2_job(page, server):
    _, data_dir = server
    [dmd2] = jobs_in(data_dir)
    open_tab(page, "Distill")
    page.get_by_label("DFD on a DMD2 student").check()
    page.locator("#distill-init input").click()
    page.get_by_role("option", name=re.compile(dmd2.id)).click()
    set_number(page, "distill-steps", "2")
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('Ready')", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#distill-check').innerText.includes('2 steps (1 student update),')"
    )
    page.locator("#distill-launch").click()

    dfd = wait_until(lambda: [j for j in jobs_in(data_dir) if j.config.get("method") == "dfd"], 20, "the DFD job")[0]
    assert dfd.parent_id == dmd2.id
    wait_until(lambda: jobs_in(data_dir)[0].state in ("succeeded", "failed"), 150, "the DFD job to finish")
    assert jobs_in(data_dir)[0].state == "succeeded", jobs_in(data_dir)[0].error


def test_compare_shows_teacher_dmd2_and_dfd_and_the_composite(page, shots):
    open_tab(page, "Compare")
    for method in ("DMD2", "DFD"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{method.lower()}-student input').value.includes('{method}')"
        )
    page.locator("#compare-run").click()
    for slot in ("teacher", "dmd2", "dfd"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-caption').innerText.includes('NFE')", timeout=120_000
        )
        page.locator(f"#compare-{slot} video").wait_for(state="attached")
    page.locator("#compare-composite video").wait_for(state="attached")
    assert "NFE 4" in page.locator("#compare-dfd-caption").inner_text()
    assert page.locator("video").count() >= 4
    screenshot(page, shots / "compare.png")


def test_diversity_shows_the_grids_and_the_metrics_table(page, shots):
    open_tab(page, "Diversity")
    page.wait_for_function("() => document.querySelectorAll('#diversity-models input:checked').length >= 3")
    page.locator("#diversity-run").click()
    page.locator("#diversity-grid video").wait_for(state="attached", timeout=180_000)
    page.locator("#diversity-stills img").wait_for(state="attached")
    table = page.locator("#diversity-table")
    page.wait_for_function("() => document.querySelector('#diversity-table').innerText.includes('teacher')")
    assert "DMD2" in table.inner_text() and "DFD" in table.inner_text()
    screenshot(page, shots / "diversity.png")


def test_publish_previews_the_card_and_exports_a_zip(page, shots):
    open_tab(page, "Publish")
    page.wait_for_function("() => document.querySelector('#publish-student input').value.includes('·')", timeout=30_000)
    page.locator("#publish-repo textarea, #publish-repo input").first.fill("someone/shapes-student")
    page.locator("#publish-preview").click()
    page.wait_for_function("() => document.querySelector('#publish-card').innerText.includes('Usage')", timeout=120_000)
    assert "pytorch_lora_weights.safetensors" in page.locator("#publish-card").inner_text()
    page.locator("#publish-export").click()
    page.locator("#publish-zip a").first.wait_for(state="attached", timeout=60_000)
    screenshot(page, shots / "publish.png")


def test_the_chosen_job_survives_a_page_reload(page, server):
    _, data_dir = server
    newest = jobs_in(data_dir)[0]
    page.reload()
    open_tab(page, "Jobs")
    page.wait_for_function(
        f"() => document.querySelector('#job-header').innerText.includes('{newest.id}')", timeout=30_000
    )
    assert len(re.findall(r"j-\d{8}-[0-9a-f]{6}", page.locator("#jobs-table").inner_text())) == 2


def test_nothing_outside_the_public_folder_can_be_downloaded(server):
    url, data_dir = server
    [job, *_] = jobs_in(data_dir) or [None]
    private = [data_dir / "studio.db", ROOT / "app.py", Path("/etc/passwd")]
    if job is not None:
        private += [
            Path(job.dir) / "config.json",
            Path(job.dir) / "log.txt",
            *sorted((Path(job.dir) / "samples").glob("*.mp4"))[:1],
            *sorted((Path(job.dir) / "lora").glob("*.safetensors"))[:1],
        ]
    private += sorted((data_dir / "publish").rglob("*.md"))[:1]
    for target in private:
        assert target.exists(), target
        for prefix in ("gradio_api/file=", "file=", "gradio_api/file=../../"):
            assert _status(url + prefix + str(target)) in (403, 404), (prefix, target)
    public_files = sorted((data_dir / "public").rglob("*.mp4"))
    assert public_files and _status(url + "gradio_api/file=" + str(public_files[0])) == 200


@pytest.fixture(scope="module")
def small_wan_and_encoders(tiny_wan_dir, tmp_path_factory):
    """The tiny random Wan pipeline at 5 frames of 32 x 32 (its dfd_studio.json) and tiny random CLIP and
    DINOv2 folders of the real classes: a base outside the shapes world and the feature models it needs."""
    import json
    import shutil

    from test_features import save_tiny_encoders

    root = tmp_path_factory.mktemp("non-shapes")
    shutil.copytree(tiny_wan_dir, root / "wan")
    (root / "wan" / "dfd_studio.json").write_text(json.dumps({"num_frames": 5, "height": 32, "width": 32, "fps": 16}))
    return root / "wan", save_tiny_encoders(root / "encoders")


def test_diversity_measures_a_wan_base_with_the_feature_models_typed_on_the_page(
    page, server, shots, small_wan_and_encoders
):
    """Last in the file: it queues sample jobs the job tests above do not expect."""
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
    # the students), and the count is typed once those updates are in
    page.get_by_text("Sampling and where to run").click()
    frames = page.locator("#compare-frames input")
    frames.fill("65")
    frames.press("Tab")
    page.wait_for_timeout(500)  # let the form's pending updates land before the value is read
    assert frames.input_value() == "65"
    page.locator("#compare-run").click()
    for slot in ("dmd2", "dfd"):
        page.wait_for_function(
            f"() => document.querySelector('#compare-{slot}-caption').innerText.includes('first chunk')",
            timeout=120_000,
        )
        assert "frames/s" in page.locator(f"#compare-{slot}-caption").inner_text()
    assert "first chunk" not in page.locator("#compare-teacher-caption").inner_text()  # the bidirectional teacher
    assert "65 frames" in page.locator("#compare-note").inner_text()
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
    after = page.evaluate(sources)
    for slot, old, new in zip(("teacher", "dmd2", "dfd"), before, after):
        assert new and new != old, (slot, old, new)
        assert "NFE" in page.locator(f"#compare-{slot}-caption").inner_text(), slot
    assert "dmd2-i2v" in page.locator("#compare-dmd2-caption").inner_text()
    assert "dfd-i2v" in page.locator("#compare-dfd-caption").inner_text()
    page.locator("#compare-composite video").wait_for(state="attached")
    assert not [j for j in jobs_in(data_dir) if j.kind == "sample" and j.config.get("base") == "shapes-tiny-i2v"]
    frames_kept = list((data_dir / "uploads" / "frames").glob("*.png"))
    assert len(frames_kept) == 1 and frames_kept[0].with_suffix(".json").is_file()  # the world's frame, its factors
    screenshot(page, shots / "compare-i2v.png")
