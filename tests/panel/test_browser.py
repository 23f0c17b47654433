"""The control panel in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium; no browser download) against ``myna-emu serve
--panel`` in vpcd slot 6, with a pyscard client on the same card.

Without chromium, its driver or selenium the tests skip with the reason, except under CI,
where they fail (ci/install-system.sh installs the browser). ``MYNA_PANEL_SCREENSHOT=FILE``
saves a screenshot of the page (docs/panel.png is made so).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.card import Card
from emulator.vpcd import reader_name
from tests.support.cards import fresh_state
from tests.support.pcscd import REPO, ensure_pcscd, in_ci
from tests.support.slots import slot_lock

pytestmark = pytest.mark.vpcd

#: Shared with tests/harness/test_served.py, one at a time (tests.support.slots.slot_lock).
SLOT = 6
READER = reader_name(SLOT)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20.0

SELECT_JPKI = [
    0x00,
    0xA4,
    0x04,
    0x0C,
    0x0A,
    0xD3,
    0x92,
    0xF0,
    0x00,
    0x26,
    0x01,
    0x00,
    0x00,
    0x00,
    0x01,
]
SELECT_AUTH_PIN = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18]
VERIFY_STATUS = [0x00, 0x20, 0x00, 0x80]
VERIFY_9999 = [0x00, 0x20, 0x00, 0x80, 0x04, 0x39, 0x39, 0x39, 0x39]


def _missing_browser() -> str | None:
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} missing (Debian package {package}; ci/install-system.sh installs it)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing_browser()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI is set but the browser is missing: {reason}", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,800",
        "--disable-gpu",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    port: int
    token: str
    state: Path


def _wait(condition: Callable[[], object], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    ensure_pcscd()
    state = tmp_path / "card.db"
    Card.create(state, fresh_state()).close()
    log = (tmp_path / "serve.log").open("w+")
    with slot_lock(SLOT):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator.cli_serve",
                "--state",
                str(state),
                "--slot",
                str(SLOT),
                "--panel",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )
        try:

            def url() -> re.Match[str] | None:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"serve exited {proc.returncode}:\n{log.read()}")
                log.seek(0)
                return re.search(r"control panel at (http://\S+:(\d+)/\?token=(\S+))", log.read())

            found = _wait(url, "the panel's URL")
            yield Served(proc, found[1], int(found[2]), found[3], state)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _connection() -> Any:
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == READER)
    connection = reader.createConnection()
    connection.connect()
    return connection


def _sw(connection: Any, apdu: list[int]) -> str:
    _data, sw1, sw2 = connection.transmit(apdu)
    return f"{sw1:02X}{sw2:02X}"


def _present() -> bool:
    from smartcard.Exceptions import CardConnectionException, NoCardException

    try:
        _connection().disconnect()
    except (NoCardException, CardConnectionException):
        return False
    return True


def _click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    # The page re-renders a card on every push: a found element may go stale before the
    # click, which then did nothing and is retried.
    _wait(lambda: driver.find_element(By.CSS_SELECTOR, css).click() or True, f"click {css}", 10)


def _text(driver: Any, css: str) -> str:
    # Found and read in one script: the page re-renders on every push, so an element
    # found by one WebDriver call may be stale by the next.
    text = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css
    )
    if text is None:
        raise LookupError(f"no element matches {css}")
    return str(text)


def test_the_page_steers_the_served_card(browser: Any, served: Served) -> None:
    driver = browser
    driver.get(served.url)
    _wait(lambda: "live" in _text(driver, "#connection"), "the event stream")
    _wait(lambda: "inserted" in _text(driver, 'article[data-slot="0"] h2'), "the card inserted")
    assert READER in _text(driver, 'article[data-slot="0"] h2')
    assert "token" not in driver.current_url  # taken out of the address bar

    # 'set tries 1' -> a pyscard client's empty VERIFY answers 63C1.
    _click(driver, 'button[data-action="set-tries"][data-pin="auth"][data-tries="1"]')
    _wait(
        lambda: _text(driver, 'tr[data-pin="auth"] td.tries').startswith("1 / 3"),
        "the page to show 1 try",
    )
    connection = _wait(_connection, "pyscard to reach the card")
    assert _sw(connection, SELECT_JPKI) == "9000"
    assert _sw(connection, SELECT_AUTH_PIN) == "9000"
    assert _sw(connection, VERIFY_STATUS) == "63C1"

    # A wrong VERIFY shows up in the log with its cause within a second.
    assert _sw(connection, VERIFY_9999) == "63C0"
    sent = time.monotonic()
    row = _wait(lambda: "wrong value" in _text(driver, "#log tbody"), "the cause", 1.0)
    assert row and time.monotonic() - sent < 1.0
    _wait(lambda: "blocked" in _text(driver, 'tr[data-pin="auth"] td.tries'), "blocked")
    assert "wrong value" in _text(driver, 'tr[data-pin="auth"] td.last')
    assert "39393939" not in driver.page_source  # the value never reaches the page
    connection.disconnect()

    screenshot = os.environ.get("MYNA_PANEL_SCREENSHOT")
    if screenshot:
        driver.save_screenshot(screenshot)

    # 'remove card' -> the client sees it gone; 'insert card' brings it back.
    _click(driver, 'button[data-action="remove"]')
    _wait(lambda: not _present(), "pyscard to see the card removed")
    _wait(lambda: "removed" in _text(driver, 'article[data-slot="0"] h2'), "the page: removed")
    _click(driver, 'button[data-action="insert"]')
    _wait(_present, "pyscard to see the card again")

    # Everything the page did is durable and in the card file.
    card = Card.open(served.state)
    try:
        assert card.pin_record("auth").tries_left == 0
    finally:
        card.close()


def test_a_request_without_the_token_is_refused(served: Served) -> None:
    for path in ("/", "/api/state", "/api/events"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{served.port}{path}", timeout=5)
        assert err.value.code == 403
    with urllib.request.urlopen(served.url, timeout=5) as rsp:
        assert rsp.status == 200
