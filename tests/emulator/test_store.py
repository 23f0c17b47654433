"""The card database: durable, shared safely by processes, refusing what it cannot use.

PIN values here belong to throw-away TEST cards; assertions name them by role.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from emulator.card import Card
from emulator.state import StateError
from emulator.store import SCHEMA_VERSION, SqliteStore, StoreBusy, StoreError, copy_card
from tests.emulator.apdus import JPKI, select_app, verify
from tests.support.cards import fresh_state

SELECT_JPKI = bytes.fromhex(select_app(JPKI))
AUTH_GOOD = bytes.fromhex(verify("1234", 0x98))
AUTH_WRONG = bytes.fromhex(verify("0000", 0x98))
AUTH_STATUS = bytes.fromhex(verify(p2=0x98))


def _powered(card: Card) -> Card:
    card.power_on()
    assert card.transmit(SELECT_JPKI) == b"\x90\x00"
    return card


def _tries_on_disk(path: Path, name: str = "auth") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT tries_left FROM pin WHERE name = ?", (name,)).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "card.db"
    Card.create(p, fresh_state()).close()
    return p


def test_round_trip_and_counters_survive_reopen(path: Path) -> None:
    card = _powered(Card.open(path))
    assert card.transmit(AUTH_WRONG) == b"\x63\xc2"
    again = Card.open(path)
    assert again.state == card.state
    assert again.state.pins["auth"].tries_left == 2


def test_created_private_and_without_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "card.db"
    Card.create(path, fresh_state()).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.db"]


def test_create_never_clobbers_without_force(path: Path) -> None:
    before = path.read_bytes()
    with pytest.raises(StateError, match="--force"):
        Card.create(path, fresh_state())
    assert path.read_bytes() == before


def test_a_symlinked_card_stays_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.db"
    Card.create(target, fresh_state()).close()
    link = tmp_path / "link.db"
    link.symlink_to(target)
    card = _powered(Card.open(link))
    assert card.transmit(AUTH_WRONG) == b"\x63\xc2"
    Card.create(link, fresh_state(), force=True).close()
    assert link.is_symlink()
    assert _tries_on_disk(target) == 3, "the forced re-issue went to the target"


def test_force_on_a_json_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "card.db"
    path.write_text('{"format": "myna-hil-card-state"}')
    Card.create(path, fresh_state(), force=True).close()
    assert Card.open(path).state.pins["auth"].tries_left == 3


def test_a_reissued_card_is_seen_by_an_open_one_at_power_on(path: Path) -> None:
    old = _powered(Card.open(path))
    Card.create(path, fresh_state(profile="face-auth"), force=True).close()
    assert old.power_on() and old.state.profile == "face-auth"
    assert "auth" not in old.state.pins


# --- several openers of one file ------------------------------------------------------------


def test_a_stale_copy_cannot_unblock_a_pin(path: Path) -> None:
    stale = _powered(Card.open(path))
    other = _powered(Card.open(path))
    for sw in (b"\x63\xc2", b"\x63\xc1", b"\x63\xc0"):
        assert other.transmit(AUTH_WRONG) == sw
    assert stale.transmit(AUTH_STATUS) == b"\x63\xc0", "status comes from the file"
    assert stale.transmit(AUTH_GOOD) == b"\x69\x84", "blocked for every opener"
    assert _tries_on_disk(path) == 0


def test_decrements_from_two_openers_add_up(path: Path) -> None:
    a, b = _powered(Card.open(path)), _powered(Card.open(path))
    assert a.transmit(AUTH_WRONG) == b"\x63\xc2"
    assert b.transmit(AUTH_WRONG) == b"\x63\xc1"
    assert a.transmit(AUTH_GOOD) == b"\x90\x00"
    assert _tries_on_disk(path) == 3


def _guess(path: str, attempts: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    card = Card.open(path, wait=30)
    card.power_on()
    card.transmit(SELECT_JPKI)
    answers = [card.transmit(AUTH_WRONG).hex() for _ in range(attempts)]
    card.close()
    queue.put(answers)


@pytest.mark.parametrize("processes", [4, 12])
def test_many_processes_never_compare_more_guesses_than_tries(path: Path, processes: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_guess, args=(str(path), 3, queue)) for _ in range(processes)]
    for w in workers:
        w.start()
    answers = [a for _ in workers for a in queue.get(timeout=120)]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    compared = sorted(a for a in answers if a.startswith("63c"))
    # Each try was spent exactly once, and each answered decrement is a distinct count.
    assert compared == ["63c0", "63c1", "63c2"]
    assert answers.count("6984") == processes * 3 - 3
    assert _tries_on_disk(path) == 0


# --- what cannot be made durable ------------------------------------------------------------


def test_busy_file_answers_6581_and_names_it(path: Path) -> None:
    card = _powered(Card.open(path, wait=0.05))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert card.transmit(AUTH_WRONG) == b"\x65\x81"
        assert isinstance(card.store_error, StoreBusy)
        assert str(path) in str(card.store_error)
        assert "\n" not in str(card.store_error)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _tries_on_disk(path) == 3, "nothing was spent"
    assert card.transmit(AUTH_WRONG) == b"\x63\xc2"
    assert card.store_error is None


def test_a_failed_commit_answers_6581_and_leaves_the_counter(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    card = _powered(Card(SqliteStore.open(path).load(), SqliteStore(path, conn)))
    assert card.transmit(AUTH_WRONG) == b"\x65\x81"
    assert isinstance(card.store_error, StoreError)
    assert "readonly" in str(card.store_error)
    assert card.transmit(AUTH_STATUS) == b"\x63\xc3", "memory agrees with the file"
    assert _tries_on_disk(path) == 3


def test_reading_does_not_wait_for_a_writer(path: Path) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE pin SET tries_left = 1 WHERE name = 'auth'")
    try:
        card = Card.open(path, wait=0)
        assert card.state.pins["auth"].tries_left == 3, "the committed state, not the pending"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- refusing what it cannot use ------------------------------------------------------------


def _mutate(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA ignore_check_constraints = ON")
    conn.execute(sql)
    conn.commit()
    conn.close()


BROKEN = {
    "newer-schema": (f"PRAGMA user_version = {SCHEMA_VERSION + 1}", "newer"),
    "other-app": ("PRAGMA application_id = 7", "not a myna-hil card"),
    "no-card-row": ("DELETE FROM card", "holds no card"),
    "profile": ("UPDATE card SET profile = 'gold'", "'profile'"),
    "holder-json": ("UPDATE card SET holder = '{'", "malformed"),
    "salt-text": ("UPDATE pin SET salt = 'x' WHERE name = 'juki'", "'salt'"),
    "tries-text": ("UPDATE pin SET tries_left = 'x' WHERE name = 'juki'", "integers"),
    "tries-high": ("UPDATE pin SET tries_left = 9 WHERE name = 'juki'", "'tries_left'"),
    "iterations": ("UPDATE pin SET iterations = 0 WHERE name = 'juki'", "'iterations'"),
    "bad-der": ("UPDATE pki SET der = x'3000' WHERE name = 'auth_key'", "pki.auth_key"),
    "no-pin": ("DELETE FROM pin WHERE name = 'helper'", "without PIN 'helper'"),
}


@pytest.mark.parametrize(("sql", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_database_is_a_one_line_state_error(path: Path, sql: str, message: str) -> None:
    _mutate(path, sql)
    with pytest.raises(StateError, match=message) as exc:
        Card.open(path)
    assert str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("content", [b"", b"garbage" * 10, b"SQLite format 3\x00" + b"\x00" * 84])
def test_a_file_that_is_no_card_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "card.db"
    path.write_bytes(content)
    with pytest.raises(StateError) as exc:
        Card.open(path)
    assert str(path) in str(exc.value)
    assert path.read_bytes() == content, "a refused file is never changed"


def test_copy_card_is_consistent_and_leaves_the_original(path: Path, tmp_path: Path) -> None:
    card = _powered(Card.open(path))
    assert card.transmit(AUTH_WRONG) == b"\x63\xc2"
    copy = tmp_path / "copy.db"
    copy_card(path, copy)
    assert Card.open(copy).state == card.state
    assert os.path.exists(path)
