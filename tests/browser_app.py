"""The real app (`python app.py`, with its worker) on 127.0.0.1 and Debian's chromium driven by Playwright,
for browser tests, in one copy: the module fixtures `server` (url, data folder), `browser`, `page` (1280 x 800,
light, the first-open comparison shown) and `shots` (the screenshot folder: $DFD_STUDIO_SCREENSHOTS when set,
e.g. docs/screenshots), which a test module imports to use; start_server/stop_server, a page at a given size
and colour scheme, and small actions and measures on a page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect as playwright_expect

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path):
    """`python app.py` on a fresh data folder: (process, url, log file), once the page answers."""
    port = free_port()
    log = open(data_dir.parent / f"{data_dir.name}-server.log", "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"app exited early:\n{Path(log.name).read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url, log
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    stop_server(proc, log)
    raise RuntimeError("app did not answer within 120 s")


def stop_server(proc, log) -> None:
    proc.terminate()  # app.py stops its worker on SIGTERM
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` with its worker on a fresh data folder: (url, data folder); stopped (worker included)
    after the module's tests."""
    data_dir = tmp_path_factory.mktemp("studio_data")
    proc, url, log = start_server(data_dir)
    try:
        yield url, data_dir
    finally:
        stop_server(proc, log)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser, server):
    """One page the module's tests share, in order, at 1280 x 800 in the light theme; handed over once the
    comparison the page opens with is shown, so no test races it."""
    page = new_page(browser, server[0])
    page.locator("#compare-teacher video").wait_for(state="attached", timeout=120_000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("DFD_STUDIO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def jobs_in(data_dir: Path) -> list:
    """The studio's jobs, newest first, read from its database ([] before the first)."""
    import engine.jobs

    return engine.jobs.list_jobs(data_dir) if (data_dir / "studio.db").exists() else []


def new_page(browser, url: str, width: int = 1280, height: int = 800, dark: bool = False, query: str = ""):
    """A page at the given size, in the dark or light colour scheme, of the address `url?query` (e.g.
    "tab=jobs"), once the studio has drawn."""
    page = browser.new_page(viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light")
    page.set_default_timeout(60_000)
    page.goto(url + ("?__theme=dark" if dark else "?__theme=light") + (f"&{query}" if query else ""))
    page.get_by_text("DFD Studio").first.wait_for()
    return page


def open_tab(page, name: str) -> None:
    """Click the tab and wait until it is the selected one: its panel shows after the click, not with it."""
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def expect(target):
    """Playwright's retrying assertions on a locator or page, waiting up to 60 s (not its 5 s): a test reads
    the state an action leads to once it is there, on a busy machine too."""
    playwright_expect.set_options(timeout=60_000)
    return playwright_expect(target)


def wait_for_tab_in_address(page, tab_id: str) -> None:
    """Wait until the address names the tab: the page rewrites it in the tab's select event, a moment after
    the click (later still on a busy machine)."""
    page.wait_for_function("(tab) => new URLSearchParams(window.location.search).get('tab') === tab", arg=tab_id)


def set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(value)
    box.press("Tab")


def screenshot(page, path: Path, full_page: bool = True) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(300)  # let transitions (radio dots, plots) settle
    page.screenshot(path=str(path), full_page=full_page)


def in_first_screen(page, selector: str) -> bool:
    """Is the element's whole box inside the viewport, without scrolling the page?"""
    return page.evaluate(
        """(sel) => {
        window.scrollTo(0, 0);
        const r = document.querySelector(sel).getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
    }""",
        selector,
    )


def contrast(page, selector: str) -> float:
    """The WCAG contrast ratio of an element's text colour against its own background colour."""
    return page.evaluate(
        """(sel) => {
        const style = getComputedStyle(document.querySelector(sel));
        const lum = (c) => {
            const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
                v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const a = lum(style.color), b = lum(style.backgroundColor);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    }""",
        selector,
    )
