"""The HIL suite's options, its one card per session, the stop rules and the report.

Run it with ``tox -e hil`` (``MYNA_READER`` names the reader, or ``-- --reader NAME``).
See the README ("Running against a real card") for the safety rules;
:mod:`harness.hil.guard` enforces them.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from harness.hil.guard import DEFAULT_MIN_TRIES, InterlockError, Interlocks, normalise_card_id
from harness.hil.identity import NotAMyNumberCardError
from harness.hil.session import ENV_READER, HilCard, HilSetupError, Secret, owner_pin
from harness.transport import TransportError

HERE = Path(__file__).resolve().parent
CARD_KEY = pytest.StashKey[HilCard]()
NO_READER = f"no reader named (set {ENV_READER})"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("myna-hil-hil", "hardware in the loop (tests/hil)")
    group.addoption(
        "--reader",
        metavar="NAME",
        default=None,
        help=f"the PC/SC reader holding the card (default: ${ENV_READER})",
    )
    group.addoption(
        "--destructive-card",
        metavar="ID",
        default=None,
        help="the reader holds this test card (ID as 'myna-hil status' shows it): "
        "destructive steps may run; another card stops the run",
    )
    group.addoption(
        "--allow-blocking",
        action="store_true",
        default=False,
        help="with --destructive-card: steps that block a PIN may run too",
    )
    group.addoption(
        "--min-tries",
        metavar="N",
        type=int,
        default=DEFAULT_MIN_TRIES,
        help="a wrong owner PIN must leave N tries, else it is not sent "
        f"(default {DEFAULT_MIN_TRIES})",
    )
    group.addoption(
        "--prompt-pin",
        action="store_true",
        default=False,
        help="ask for the auth PIN on the terminal (else $MYNA_AUTH_PIN; "
        "neither: the PIN steps are skipped)",
    )
    group.addoption(
        "--hil-report",
        metavar="DIR",
        default="hil-results",
        help="where report.json, summary.txt and trace.jsonl go",
    )


def _opt(config: pytest.Config, name: str, default: object = None) -> object:
    return config.getoption(name, default)  # None when this conftest was loaded late


def _requested(config: pytest.Config) -> bool:
    """Only a run that asks for the HIL suite touches a reader (not the whole test suite)."""
    if "hil" in str(config.option.markexpr or ""):
        return True
    return any(Path(str(a).split("::")[0]).resolve().is_relative_to(HERE) for a in config.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _requested(config):
        return
    skip = pytest.mark.skip(reason="HIL suite: run it with tox -e hil (pytest tests/hil -m hil)")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def _interlocks(config: pytest.Config) -> Interlocks:
    wanted = _opt(config, "--destructive-card")
    blocking = bool(_opt(config, "--allow-blocking", False))
    if blocking and not wanted:
        raise pytest.UsageError("--allow-blocking needs --destructive-card ID")
    min_tries = int(str(_opt(config, "--min-tries", DEFAULT_MIN_TRIES)))
    if not 1 <= min_tries <= 5:
        raise pytest.UsageError("--min-tries must be 1..5")
    try:
        card_id = normalise_card_id(str(wanted)) if wanted else None
    except ValueError as exc:
        raise pytest.UsageError(f"--destructive-card: {exc}") from None
    return Interlocks(card_id, blocking, min_tries)


def _readers_found() -> str:
    try:
        from harness.hil.pcsc import list_readers

        return ", ".join(repr(r) for r in list_readers()) or "none"
    except Exception as exc:
        return f"unknown ({exc})"


@pytest.fixture(scope="session")
def hil(request: pytest.FixtureRequest) -> Iterator[HilCard]:
    """The card in the named reader, identified and guarded (one per session)."""
    config = request.config
    name = _opt(config, "--reader") or os.environ.get(ENV_READER)
    if not name:
        pytest.skip(f"{NO_READER}; readers found: {_readers_found()}")
    interlocks = _interlocks(config)
    try:
        card = HilCard.connect(str(name), interlocks)
    except HilSetupError as exc:
        pytest.exit(f"myna-hil HIL: {exc}; nothing was run", returncode=1)
    config.stash[CARD_KEY] = card
    try:
        card.authorise()
    except (InterlockError, NotAMyNumberCardError, TransportError) as exc:
        pytest.exit(f"myna-hil HIL: {exc}; the run stopped after the identification", returncode=1)
    try:
        yield card
    finally:
        card.close()


@pytest.fixture(scope="session")
def auth_pin(request: pytest.FixtureRequest) -> Secret | None:
    """The owner's auth PIN ($MYNA_AUTH_PIN or --prompt-pin), or None."""
    try:
        return owner_pin(os.environ, prompt=bool(_opt(request.config, "--prompt-pin", False)))
    except HilSetupError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    card = item.config.stash.get(CARD_KEY, None)
    outcome = str(getattr(report, "outcome", ""))
    if card is not None and (call.when == "call" or outcome != "passed"):
        card.outcomes[item.nodeid.rpartition("::")[2]] = outcome
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, (TransportError, InterlockError)):
        why = f"{type(excinfo.value).__name__}: {excinfo.value}"
        if card is not None:
            card.stopped = why
        item.session.shouldstop = f"{why} -- run stopped, nothing retried"
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    card = session.config.stash.get(CARD_KEY, None)
    if card is None:
        return
    from harness.hil.report import summary_text, write_report

    directory = Path(str(_opt(session.config, "--hil-report", "hil-results")))
    doc = write_report(card, directory)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", "myna-hil HIL report")
        reporter.write_line(summary_text(doc))
        reporter.write_line(f"written to {directory}/ (report.json, summary.txt, trace.jsonl)")
