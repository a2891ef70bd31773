"""The studio's journey in Debian's chromium through Playwright, against the real app on 127.0.0.1 (`python
app.py`, with its worker): an invalid form is explained, a short DMD2 job is launched and watched to the end, a
DFD job starts from it, Compare shows three videos, Diversity its grids and table, Publish a card; the chosen
job survives a reload; nothing outside the public folder can be downloaded over HTTP. Other bases are
tests/test_browser_bases.py. The invalid form's screenshot goes to $DFD_STUDIO_SCREENSHOTS when set (e.g.
docs/screenshots); the other tabs' are taken by tests/test_browser_meet.py and tests/test_browser_jobs_ux.py."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser_app import (  # noqa: F401 (browser, page, server, shots: fixtures)
    CHROMIUM,
    browser,
    expect,
    jobs_in,
    new_page,
    open_tab,
    page,
    screenshot,
    server,
    set_number,
    shots,
    wait_for_tab_in_address,
)
from conftest import ROOT
from conftest import wait_for as wait_until

SHORT_JOB = {"steps": "2", "batch_size": "2", "student_update_freq": "2"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def jobs_made(data_dir: Path, count: int) -> list:
    """At least `count` finished jobs, newest first: the ones the tests before launched from the page; a test
    run alone has short DMD2 jobs queued here and run by the app's worker."""
    import engine.jobs  # the job API, needed only when a test runs alone

    for _ in range(count - len(jobs_in(data_dir))):
        engine.jobs.submit(data_dir, "distill", {"method": "dmd2", **{k: int(v) for k, v in SHORT_JOB.items()}})
    done = ("succeeded", "failed", "cancelled")
    wait_until(lambda: all(j.state in done for j in jobs_in(data_dir)), 300, f"{count} jobs to finish")
    return jobs_in(data_dir)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_page_opens_on_compare_with_the_built_in_teachers_sample(page):
    video = page.locator("#compare-teacher video")
    video.wait_for(state="attached", timeout=120_000)
    expect(page.locator("#compare-teacher-caption")).to_contain_text("NFE 100", use_inner_text=True)
    from engine.models.students import shipped_students

    shipped = {s.method for s in shipped_students() if s.base == "shapes-tiny"}
    for method, name in (("dmd2", "DMD2"), ("dfd", "DFD")):  # shipped students are compared from the start
        caption = page.locator(f"#compare-{method}-caption")
        expect(caption).to_contain_text("NFE 4" if method in shipped else f"No {name} student", use_inner_text=True)


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


def test_a_short_dmd2_job_is_launched_watched_and_finishes(page, server):
    _, data_dir = server
    open_tab(page, "Distill")
    page.get_by_text("DMD2 from the teacher", exact=True).click()
    for name, value in SHORT_JOB.items():
        set_number(page, f"distill-{name}", value)
    page.wait_for_function(
        "() => document.querySelector('#distill-check').innerText.includes('2 steps (1 student update), batch 2')"
    )
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
    expect(page.locator("#job-header")).to_contain_text("100%", use_inner_text=True)
    worker = page.locator("#worker-health")  # app.py's worker, read by the Jobs tab's timer
    expect(worker).to_have_text(re.compile(r"^worker: running \(pid "), use_inner_text=True)


def test_a_dfd_job_starts_from_the_finished_dmd2_job(page, server):
    _, data_dir = server
    [dmd2] = jobs_made(data_dir, 1)
    open_tab(page, "Distill")
    page.get_by_label("DFD on a DMD2 student").check()
    page.locator("#distill-init input").click()
    page.get_by_role("option", name=re.compile(dmd2.id)).click()
    for name, value in SHORT_JOB.items():  # as the DMD2 run's: the form may not hold them (a test run alone)
        set_number(page, f"distill-{name}", value)
    page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('Ready')", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#distill-check').innerText.includes('2 steps (1 student update), batch 2')"
    )
    page.locator("#distill-launch").click()

    dfd = wait_until(lambda: [j for j in jobs_in(data_dir) if j.config.get("method") == "dfd"], 20, "the DFD job")[0]
    assert dfd.parent_id == dmd2.id
    wait_until(lambda: jobs_in(data_dir)[0].state in ("succeeded", "failed"), 150, "the DFD job to finish")
    assert jobs_in(data_dir)[0].state == "succeeded", jobs_in(data_dir)[0].error


def test_compare_shows_teacher_dmd2_and_dfd_and_the_composite(page):
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


def test_diversity_shows_the_grids_and_the_metrics_table(page):
    open_tab(page, "Diversity")
    page.wait_for_function("() => document.querySelectorAll('#diversity-models input:checked').length >= 3")
    page.locator("#diversity-run").click()
    page.locator("#diversity-grid video").wait_for(state="attached", timeout=180_000)
    page.locator("#diversity-stills img").wait_for(state="attached")
    table = page.locator("#diversity-table")
    page.wait_for_function("() => document.querySelector('#diversity-table').innerText.includes('teacher')")
    assert "DMD2" in table.inner_text() and "DFD" in table.inner_text()


def test_publish_previews_the_card_and_exports_a_zip(page):
    open_tab(page, "Publish")
    page.wait_for_function("() => document.querySelector('#publish-student input').value.includes('·')", timeout=30_000)
    page.locator("#publish-repo textarea, #publish-repo input").first.fill("someone/shapes-student")
    page.locator("#publish-preview").click()
    page.wait_for_function("() => document.querySelector('#publish-card').innerText.includes('Usage')", timeout=120_000)
    assert "pytorch_lora_weights.safetensors" in page.locator("#publish-card").inner_text()
    page.locator("#publish-export").click()
    page.locator("#publish-zip a").first.wait_for(state="attached", timeout=60_000)


HEADER_NAMES = "(id) => document.querySelector('#job-header').innerText.includes(id)"
SELECTED_TAB = "() => document.querySelector('[role=tab][aria-selected=true]')?.innerText.trim()"


def test_the_chosen_job_is_in_the_address_and_a_reload_lands_on_it(page, browser, server):
    url, data_dir = server
    newest, older = jobs_made(data_dir, 2)[:2]
    open_tab(page, "Jobs")
    page.locator("#job-picker input").click()
    page.get_by_role("option", name=re.compile(older.id)).click()  # not the newest, which is shown by default
    page.wait_for_function(HEADER_NAMES, arg=older.id, timeout=30_000)
    page.wait_for_function("(id) => window.location.search.includes('job=' + id)", arg=older.id)
    wait_for_tab_in_address(page, "jobs")  # the address is rewritten after the click, not with it
    page.reload()
    page.get_by_text("DFD Studio").first.wait_for()
    page.wait_for_function(f"() => ({SELECTED_TAB})() === 'Jobs'")
    page.wait_for_function(HEADER_NAMES, arg=older.id, timeout=30_000)
    page.wait_for_timeout(5000)  # a few of the table's 2 s ticks: it stays on the chosen job
    assert older.id in page.locator("#job-header").inner_text()
    assert older.id in page.locator("#job-picker input").input_value()
    assert len(re.findall(r"j-\d{8}-[0-9a-f]{6}", page.locator("#jobs-table").inner_text())) == 2

    sent = new_page(browser, url, query=f"tab=jobs&job={older.id}")  # the address sent to someone: nothing kept
    try:
        sent.wait_for_function(f"() => ({SELECTED_TAB})() === 'Jobs'")
        sent.wait_for_function(HEADER_NAMES, arg=older.id, timeout=30_000)
        missing = "j-20000101-000000"
        sent.goto(f"{url}?tab=jobs&job={missing}")
        sent.wait_for_function(
            "(id) => document.querySelector('#job-action')?.innerText.includes('There is no job ' + id)",
            arg=missing,
            timeout=30_000,
        )
        assert f"showing {newest.id}" in sent.locator("#job-action").inner_text()
        sent.wait_for_function(HEADER_NAMES, arg=newest.id)
    finally:
        sent.close()


def test_nothing_outside_the_public_folder_can_be_downloaded(page, server):
    url, data_dir = server  # the page: its first-open comparison puts the public mp4s there
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
