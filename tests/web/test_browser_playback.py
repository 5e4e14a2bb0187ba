"""Headless Chromium plays a returned link in an <audio> element and seeks to the middle."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.web.conftest import Archive, Gateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="chromium or chromedriver is not installed"
)
webdriver = pytest.importorskip("selenium.webdriver")

PAGE = """<!doctype html><html><body>
<audio id="player" preload="auto" src="{src}"></audio>
</body></html>"""


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static server for the test page (another origin than the gateway)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_chromium_plays_and_seeks(
    gw: Gateway, archive: Archive, page_server: tuple[str, Path], browser: webdriver.Chrome
) -> None:
    call = archive.call_with(1)
    (f,) = gw.links(call)
    base, folder = page_server
    (folder / "player.html").write_text(PAGE.format(src=f["url"]))
    browser.get(f"{base}/player.html")

    def state() -> dict[str, float]:
        result: dict[str, float] = browser.execute_script(
            "const a = document.getElementById('player');"
            "return {ready: a.readyState, duration: a.duration, time: a.currentTime,"
            " error: a.error ? a.error.code : 0, seekable: a.seekable.length ?"
            " a.seekable.end(0) : 0, paused: a.paused};"
        )
        return result

    def loaded_or_failed() -> bool:
        now = state()
        return now["ready"] >= 1 or now["error"] != 0

    wait_until(loaded_or_failed, 20, 0.1, what=lambda: f"the audio to load: {state()}")
    loaded = state()
    assert loaded["error"] == 0, loaded
    assert loaded["duration"] > 4  # the demo calls are several seconds long
    assert loaded["seekable"] >= loaded["duration"] - 0.1  # ranges make it seekable

    middle = loaded["duration"] / 2
    browser.execute_script(
        "const a = document.getElementById('player'); a.currentTime = arguments[0]; a.play();",
        middle,
    )

    def played_past_the_middle_or_failed() -> bool:
        now = state()
        return now["time"] > middle + 0.3 or now["error"] != 0

    wait_until(
        played_past_the_middle_or_failed, 20, 0.1, what=lambda: f"playback to go on: {state()}"
    )
    now = state()
    assert now["error"] == 0, now
    assert middle + 0.3 < now["time"] <= loaded["duration"], now
    assert " 206 " in gw.log()
