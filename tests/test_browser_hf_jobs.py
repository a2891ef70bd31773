"""The Distill tab's Run on target in chromium at 1280x800 against the real app (`python app.py`): picking HF Jobs
on a studio nobody signed in to shows the flavor, the time limit and one line saying to sign in, and Launch then
refuses the same way, storing nothing; "this machine" hides them again. The signed-in path (priced flavors, a
tracked launch) needs a Hugging Face sign-in session: tests/test_studio_distill_target.py drives it."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_app import (
    CHROMIUM,
    CHROMIUM_ARGS,
    expect,
    in_first_screen,
    new_page,
    open_tab,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("studio_data")
    proc, url, log = start_server(data_dir)
    try:
        yield url, data_dir
    finally:
        stop_server(proc, log)


def test_hf_jobs_without_a_sign_in_says_what_to_do_and_launches_nothing(server):
    from playwright.sync_api import sync_playwright

    url, data_dir = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = new_page(browser, url)
            open_tab(page, "Distill")
            page.wait_for_function("() => document.querySelector('#distill-check').innerText.includes('Ready')")
            assert not page.locator("#distill-flavor").is_visible()
            page.get_by_label("HF Jobs (your Hugging Face account, at your cost)").check()
            page.wait_for_function(
                "() => (document.querySelector('#distill-cost')?.innerText || '').includes('sign in')"
            )
            expect(page.locator("#distill-cost")).to_contain_text(
                "Cannot use HF Jobs: HF Jobs run under your own Hugging Face account", use_inner_text=True
            )
            expect(page.locator("#distill-flavor")).to_be_visible()
            expect(page.locator("#distill-timeout")).to_be_visible()
            assert in_first_screen(page, "#distill-launch") and in_first_screen(page, "#distill-target")
            page.locator("#distill-launch").click()
            page.wait_for_function(
                "() => document.querySelector('#distill-check').innerText.includes('Cannot launch on HF Jobs')"
            )
            expect(page.locator("#distill-check")).to_contain_text("sign in with Hugging Face", use_inner_text=True)
            page.get_by_label("this machine").check()
            page.locator("#distill-flavor").wait_for(state="hidden")
        finally:
            browser.close()
    import engine.jobs

    assert not (data_dir / "studio.db").exists() or engine.jobs.list_jobs(data_dir) == []
