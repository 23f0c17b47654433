"""Looking into a card database from a test, as another process would (plain ``sqlite3``).

Reads take a snapshot and never wait for the card's writer; nothing here spends a try.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path


def _query(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def tries(path: Path) -> dict[str, int]:
    """Tries left per PIN name."""
    rows = _query(path, "SELECT name, tries_left FROM pin")
    return {str(n): int(str(t)) for n, t in rows}


def der(path: Path, name: str) -> bytes:
    """A key or certificate (``auth_cert``, ...) as stored."""
    (value,) = _query(path, "SELECT der FROM pki WHERE name = ?", name)[0]
    assert isinstance(value, bytes)
    return value


def set_tries(path: Path, name: str, count: int) -> None:
    """Write a counter before the card is served (test set-up, not a card command)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE pin SET tries_left = ? WHERE name = ?", (count, name))
        conn.commit()
    finally:
        conn.close()


def digest(path: Path) -> str:
    """SHA-256 over the database and its write-ahead log: changes if anything was written."""
    h = hashlib.sha256(path.read_bytes())
    wal = Path(f"{path}-wal")
    if wal.exists():
        h.update(wal.read_bytes())
    return h.hexdigest()
