"""Where a card's state lives: in memory, or in one SQLite database that many processes share.

A physical card has one EEPROM and one operating system that serialises every command; a
virtual card may be opened by several processes at once (``myna-emu serve`` and a
``myna-emu apdu`` on the same file, a test farm). So a counter is never written from a copy
held in memory: every change is one transaction that reads the record and writes it back
inside the database's write lock (``BEGIN IMMEDIATE``), and is durable (WAL,
``synchronous=FULL``: one ``fdatasync`` of the log) before the card answers. Processes then
never lose a decrement, and a PIN blocked by one stays blocked for all.

Schema (version :data:`SCHEMA_VERSION`, in ``PRAGMA user_version``)::

    card  one row: format, generation, profile, ATR form, quirks and holder data (JSON)
    pin   one row per secret: salt, digest, iterations, tries_left, max_tries
    pki   one row per key or certificate: name, DER (NULL where absent)

``generation`` counts changes outside the PIN records (profile, keys, quirks): a card that
sees it move reloads its file model at the next power-on.
"""

from __future__ import annotations

import copy
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import fields
from pathlib import Path

from emulator.state import CardState, PinChange, PinRecord, Pki, StateError

#: Version of the database layout. Bump on any change; add the step to ``_MIGRATIONS``.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id``: "MYNA", so ``file(1)`` and we can tell our databases apart.
APPLICATION_ID = 0x4D594E41
CARD_FORMAT = "myna-hil-card"
#: Seconds a process waits for another one's write lock before giving up (``--wait``).
DEFAULT_WAIT = 10.0
#: A counter change rewrites one page; 512 bytes to the log instead of 4 KiB.
PAGE_SIZE = 512
#: Pages in the log before it is folded back into the database. Small: the log is then
#: rewritten in place (no growth, a cheaper fdatasync) and stays a few dozen KiB.
AUTOCHECKPOINT = 100

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PKI_FIELDS = tuple(f.name for f in fields(Pki))
_PIN_COLUMNS = "salt, digest, iterations, tries_left, max_tries"
_UPDATE_PIN = "UPDATE pin SET salt = ?, digest = ?, iterations = ?, tries_left = ? WHERE name = ?"

_SCHEMA = f"""
CREATE TABLE card (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format TEXT NOT NULL,
    generation INTEGER NOT NULL,
    profile TEXT NOT NULL,
    atr_form TEXT NOT NULL,
    quirks TEXT NOT NULL,
    holder TEXT NOT NULL
);
CREATE TABLE pin (
    name TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations > 0),
    max_tries INTEGER NOT NULL CHECK (max_tries BETWEEN 1 AND 15),
    tries_left INTEGER NOT NULL CHECK (tries_left BETWEEN 0 AND max_tries)
) WITHOUT ROWID;
CREATE TABLE pki (name TEXT PRIMARY KEY, der BLOB) WITHOUT ROWID;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

#: Steps from one schema version to the next: ``{old_version: script}``. None yet.
_MIGRATIONS: dict[int, str] = {}


class StoreError(Exception):
    """A change could not be made durable; the card answers 6581 and the message says why."""


class StoreBusy(StoreError):
    """Another process held the card's write lock for longer than this one would wait."""


class Store:
    """A card's durable state. Every method that changes it returns only once durable."""

    def __init__(self) -> None:
        #: Durable writes performed: the emulator's analogue of EEPROM write cycles.
        self.writes = 0

    def describe(self) -> str:
        raise NotImplementedError

    def load(self) -> CardState:
        """The whole state as stored now."""
        raise NotImplementedError

    def generation(self) -> int:
        """Changes made so far outside the PIN records (cheap; no write)."""
        raise NotImplementedError

    def read_pin(self, name: str) -> PinRecord:
        """One PIN record as stored now (no write)."""
        raise NotImplementedError

    def modify_pin(self, name: str, change: PinChange) -> PinRecord:
        """Read *name*'s record, apply *change*, write it back: one atomic, durable step."""
        raise NotImplementedError

    def transform(self, change: Callable[[CardState], None]) -> CardState:
        """Read the whole state, apply *change*, write it back: one atomic, durable step."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file; every change is already durable."""


class MemoryStore(Store):
    """No persistence: the state lives as long as the process (and only in it)."""

    def __init__(self, state: CardState) -> None:
        super().__init__()
        self._state = state
        self._generation = 0

    def describe(self) -> str:
        return "memory"

    def load(self) -> CardState:
        return self._state

    def generation(self) -> int:
        return self._generation

    def read_pin(self, name: str) -> PinRecord:
        return self._state.pins[name]

    def modify_pin(self, name: str, change: PinChange) -> PinRecord:
        record = copy.copy(self._state.pins[name])
        change(record)
        self._state.pins[name] = record
        self.writes += 1
        return record

    def transform(self, change: Callable[[CardState], None]) -> CardState:
        state = copy.deepcopy(self._state)
        change(state)
        _check(state)
        self._state = state
        self._generation += 1
        self.writes += 1
        return state


class SqliteStore(Store):
    """One card in one SQLite database, shared safely by any number of processes."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        super().__init__()
        self.path = path
        self._conn = conn

    # --- opening and creating ---------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, wait: float = DEFAULT_WAIT, read_only: bool = False
    ) -> SqliteStore:
        """Open an existing card; ``StateError`` (one line, naming the file) if unusable.

        *read_only* (``show``, ``export``) also opens a card on read-only media, where SQLite
        cannot create the files a writer needs; every change then answers 6581.
        """
        path = Path(path)
        _refuse_non_database(path)
        try:
            conn = _connect(path, wait)
        except StateError:
            if not read_only:
                raise
            conn = _connect_read_only(path)
        try:
            _check_schema(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        state: CardState,
        *,
        force: bool = False,
        wait: float = DEFAULT_WAIT,
    ) -> SqliteStore:
        """Write *state* as a new card at *path* (mode 0600) and open it.

        Without *force* an existing file is never touched. With it, a card database is
        overwritten in one transaction (processes that have it open see the new card at their
        next power-on) and any other file is replaced. A symlink stays a symlink.
        """
        path = Path(path)
        _check(state)
        if force and _is_database(path):
            store = cls.open(path, wait=wait)
            try:
                store.transform(lambda current: _replace(current, state))
            except BaseException:
                store.close()
                raise
            return store
        import tempfile  # only to create a database: opening one (every card) needs none

        target = Path(os.path.realpath(path))
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".new", dir=target.parent)
        os.close(fd)  # mkstemp creates it 0600; SQLite gives its -wal and -shm the same mode
        try:
            conn = _connect(Path(tmp), wait, new=True)
            try:
                with _transaction(conn, Path(tmp)):
                    _write_state(conn, state, generation=0)
            finally:
                conn.close()  # the last connection folds the log in and removes it
            _fsync(tmp)
            if force:
                for suffix in ("-wal", "-shm"):  # a stale log must not be replayed into it
                    with suppress(FileNotFoundError):
                        os.unlink(f"{target}{suffix}")
                os.replace(tmp, target)
            else:
                os.link(tmp, target)  # fails if the file appeared meanwhile: never clobbered
                os.unlink(tmp)
            _fsync_dir(target.parent)
        except FileExistsError:
            raise StateError(f"{path} exists; use --force to overwrite it") from None
        except OSError as exc:
            raise StateError(f"cannot create card {path}: {exc.strerror}") from None
        finally:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
        return cls.open(path, wait=wait)

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self._conn.close()

    # --- reading ------------------------------------------------------------------------------

    def load(self) -> CardState:
        with self._errors("read"):
            self._conn.execute("BEGIN")  # one snapshot for all three tables; blocks no writer
            try:
                return _read_state(self._conn, self.path)
            finally:
                self._conn.execute("COMMIT")

    def generation(self) -> int:
        with self._errors("read"):
            row = self._conn.execute("SELECT generation FROM card").fetchone()
        if row is None or type(row[0]) is not int:
            raise StateError(
                f"{self.path}: the card row is missing or its generation is not an integer"
            )
        return int(row[0])

    def read_pin(self, name: str) -> PinRecord:
        with self._errors("read"):
            return _read_pin(self._conn, name)

    # --- changing -----------------------------------------------------------------------------

    def modify_pin(self, name: str, change: PinChange) -> PinRecord:
        # The hot path of every VERIFY with data: the same steps as _transaction and _errors,
        # written out (the two context managers cost about a third of the card's own work).
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                record = _read_pin(conn, name)
                change(record)
                conn.execute(
                    _UPDATE_PIN,
                    (record.salt, record.digest, record.iterations, record.tries_left, name),
                )
                conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._store_error(exc, "change") from None
        self.writes += 1
        return record

    def transform(self, change: Callable[[CardState], None]) -> CardState:
        with self._errors("change"), _transaction(self._conn, self.path):
            state = _read_state(self._conn, self.path)
            change(state)
            _check(state)
            generation = self._conn.execute("SELECT generation FROM card").fetchone()[0]
            for table in ("card", "pin", "pki"):
                self._conn.execute(f"DELETE FROM {table}")
            _write_state(self._conn, state, generation=generation + 1)
        self.writes += 1
        return state

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """SQLite's exceptions as one-line ``StoreError`` messages naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._store_error(exc, what) from None

    def _store_error(self, exc: sqlite3.Error, what: str) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return StoreBusy(
                f"{self.path} is busy: another process held its write lock for longer than"
                f" the wait allowed; nothing was changed"
            )
        return StoreError(f"cannot {what} {self.path}: {text}")


# --- SQL helpers ----------------------------------------------------------------------------


def _connect(path: Path, wait: float, *, new: bool = False) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=wait, isolation_level=None, check_same_thread=False)
        if new:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT}")
    except sqlite3.Error as exc:
        hint = ""
        if "unable to open" in str(exc):
            hint = " (a card needs a writable directory for its -wal and -shm files)"
        raise StateError(f"cannot open card {path}: {exc}{hint}") from None
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that needs no -shm: immutable, so only when no log holds newer data."""
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StateError(
            f"cannot open card {path} read-only: its log {wal.name} holds changes"
            " that only a writable directory can fold in"
        )
    uri = f"{Path(os.path.abspath(path)).as_uri()}?immutable=1"
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StateError(f"cannot open card {path}: {exc}") from None


@contextmanager
def _transaction(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock, waiting up to the busy timeout) ... ``COMMIT``."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    try:
        app_id, version = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("application_id", "user_version")
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot open card {path}: {exc}") from None
    if app_id != APPLICATION_ID:
        raise StateError(f"{path} is an SQLite database but not a myna-hil card")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path} has card schema {version}, newer than this myna-hil understands"
            f" ({SCHEMA_VERSION}); upgrade myna-hil"
        )
    while version < SCHEMA_VERSION:
        script = _MIGRATIONS.get(version)
        if script is None:
            raise StateError(f"{path}: no migration from card schema {version}")
        conn.executescript(
            f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {version + 1}; COMMIT;"
        )
        version += 1


def _read_pin(conn: sqlite3.Connection, name: str) -> PinRecord:
    row = conn.execute(f"SELECT {_PIN_COLUMNS} FROM pin WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise KeyError(name)
    return PinRecord(*row)


def _read_state(conn: sqlite3.Connection, path: Path) -> CardState:
    row = conn.execute("SELECT format, profile, atr_form, quirks, holder FROM card").fetchone()
    if row is None or row[0] != CARD_FORMAT:
        raise StateError(f"{path} holds no card")
    pins = {
        r[0]: PinRecord(*r[1:])
        for r in conn.execute(f"SELECT name, {_PIN_COLUMNS} FROM pin ORDER BY name")
    }
    pki = dict(conn.execute("SELECT name, der FROM pki").fetchall())
    try:
        state = CardState.from_parts(
            profile=row[1],
            atr_form=row[2],
            quirks=json.loads(row[3]),
            holder=json.loads(row[4]),
            pins=pins,
            pki={k: pki.get(k) for k in _PKI_FIELDS},
        )
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from None
    except (TypeError, ValueError):
        raise StateError(f"{path}: the card row is malformed (quirks or holder not JSON)") from None
    return state


def _write_state(conn: sqlite3.Connection, state: CardState, *, generation: int) -> None:
    conn.execute(
        "INSERT INTO card (id, format, generation, profile, atr_form, quirks, holder)"
        " VALUES (1, ?, ?, ?, ?, ?, ?)",
        (
            CARD_FORMAT,
            generation,
            state.profile,
            state.atr_form,
            json.dumps(vars(state.quirks)),
            json.dumps(vars(state.holder), ensure_ascii=False),
        ),
    )
    conn.executemany(
        f"INSERT INTO pin (name, {_PIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (n, r.salt, r.digest, r.iterations, r.tries_left, r.max_tries)
            for n, r in state.pins.items()
        ],
    )
    conn.executemany(
        "INSERT INTO pki (name, der) VALUES (?, ?)",
        [(k, getattr(state.pki, k)) for k in _PKI_FIELDS],
    )


# --- files --------------------------------------------------------------------------------


def _is_database(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def _refuse_non_database(path: Path) -> None:
    """One-line reasons not to hand a file to SQLite (it would say 'file is not a database')."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        raise StateError(
            f"no card at {path}; create one with 'myna-emu init --state {path}'"
        ) from None
    except OSError as exc:
        raise StateError(f"cannot read card {path}: {exc.strerror}") from None
    if head == _SQLITE_MAGIC:
        return
    if head.lstrip()[:1] == b"{":
        raise StateError(
            f"{path} is a JSON card state (the format before the card database); convert it"
            f" with 'myna-emu import {path} --state NEW.db'"
        )
    raise StateError(f"{path} is not a myna-hil card database")


def _fsync(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a new directory entry (a created card file) durable. POSIX only: Windows cannot
    open a directory as a file, and NTFS journals the entry with the rename or link itself."""
    if os.name == "nt":
        return
    _fsync(path)


def _replace(current: CardState, new: CardState) -> None:
    for f in fields(CardState):
        setattr(current, f.name, copy.deepcopy(getattr(new, f.name)))


def _check(state: CardState) -> None:
    problem = state.problem()
    if problem:
        raise StateError(f"card state is inconsistent: {problem}")


def copy_card(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A consistent copy of a card (its log included), e.g. to inspect without touching it.

    *target* is replaced. The copy is taken under a read snapshot: writers carry on.
    """
    for suffix in ("", "-wal", "-shm"):
        with suppress(FileNotFoundError):
            os.unlink(f"{target}{suffix}")
    src = SqliteStore.open(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src._conn.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


__all__ = [
    "DEFAULT_WAIT",
    "SCHEMA_VERSION",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreBusy",
    "StoreError",
    "copy_card",
]
