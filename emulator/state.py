"""Card state as data, and its durable, versioned on-disk form.

Everything that survives a power cycle lives in :class:`CardState`: profile, quirks, PIN
records (salted hashes and counters, never the values), keys, certificates and holder data.
A :class:`Store` makes it durable. :class:`FileStore` writes atomically (temp file, fsync,
rename, fsync of the directory), so a kill at any moment leaves either the old or the new
state; :class:`MemoryStore` keeps nothing, for fast tests.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Version of the on-disk form. Bump on any incompatible change; older files are migrated,
#: newer ones refused.
STATE_VERSION = 1
STATE_FORMAT = "myna-hil-card-state"


class StateError(Exception):
    """The state file cannot be used; the message says why and what to do."""


@dataclass
class PinRecord:
    """One secret's reference data: a salted PBKDF2 hash and its retry counter."""

    salt: bytes
    digest: bytes
    iterations: int
    tries_left: int
    max_tries: int

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0


@dataclass
class Holder:
    """The (generated, fictitious) card holder printed on the card and stored in the text AP."""

    name: str
    address: str
    birth_date: str  # YYYYMMDD
    sex: str  # ISO 5218: "1" male, "2" female, "9" not applicable
    my_number: str  # 12 digits, the last one a check digit


@dataclass
class Pki:
    """Keys (PKCS#8 DER) and certificates (X.509 DER) of the card and of its TEST CAs."""

    auth_ca_key: bytes
    auth_ca_cert: bytes
    sign_ca_key: bytes
    sign_ca_cert: bytes
    auth_key: bytes
    auth_cert: bytes
    sign_key: bytes | None = None  # absent on face-authentication cards
    sign_cert: bytes | None = None


@dataclass
class Quirks:
    """Behaviours seen on some real cards only; all off by default."""

    #: Answer 9000 (not 63Cx) to an empty VERIFY after a successful VERIFY in the session.
    status_9000_after_verify: bool = False


@dataclass
class CardState:
    profile: str  # "standard" | "face-auth"
    atr_form: str
    holder: Holder
    pki: Pki
    pins: dict[str, PinRecord]
    quirks: Quirks = field(default_factory=Quirks)
    version: int = STATE_VERSION

    # --- on-disk form ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        doc = self._head()
        # A copy: callers may edit the document, the cached encoding must not change.
        doc["pki"] = dict(_pki_json(*self._pki_values()))
        return doc

    def to_json_bytes(self) -> bytes:
        """The on-disk form, compact. Same document as :meth:`to_json`, built faster: the
        keys and certificates (most of the bytes) are encoded once and reused per commit."""
        head = json.dumps(self._head(), ensure_ascii=False, separators=(",", ":"))
        return f'{head[:-1]},"pki":{_pki_text(*self._pki_values())}}}'.encode()

    def _head(self) -> dict[str, Any]:
        """Everything but the PKI. ``vars`` copies: ``asdict`` costs ~10 µs a dataclass."""
        return {
            "format": STATE_FORMAT,
            "version": self.version,
            "profile": self.profile,
            "atr_form": self.atr_form,
            "quirks": dict(vars(self.quirks)),
            "holder": dict(vars(self.holder)),
            "pins": {name: _pin_json(rec) for name, rec in self.pins.items()},
        }

    def _pki_values(self) -> tuple[bytes | None, ...]:
        pki = self.pki
        return tuple(getattr(pki, f) for f in _PKI_FIELDS)

    @classmethod
    def from_json(cls, doc: Any) -> CardState:
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise StateError("not a myna-hil card state (missing or wrong 'format')")
        version = doc.get("version")
        if not isinstance(version, int):
            raise StateError("card state has no integer 'version'")
        if version > STATE_VERSION:
            raise StateError(
                f"card state version {version} is newer than this myna-hil understands"
                f" ({STATE_VERSION}); upgrade myna-hil"
            )
        try:
            state = cls(
                profile=str(doc["profile"]),
                atr_form=str(doc["atr_form"]),
                quirks=Quirks(**doc.get("quirks", {})),
                holder=Holder(**doc["holder"]),
                pins={n: PinRecord(**_decode_bytes(r, PinRecord)) for n, r in doc["pins"].items()},
                pki=Pki(**_decode_bytes(doc["pki"], Pki)),
                version=STATE_VERSION,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"card state is incomplete or malformed: {exc!r}") from None
        problem = state._problem()
        if problem:
            raise StateError(f"card state is inconsistent: {problem}")
        return state

    def _problem(self) -> str | None:
        """What makes a decoded state unusable by the card, or ``None``.

        A well-formed JSON document can still hold values the card would trip over at the
        first APDU (a string counter, an unknown profile); refuse them at load time instead.
        """
        from emulator.profiles import ATRS, PROFILES, STANDARD

        if self.profile not in PROFILES:
            return f"unknown profile {self.profile!r}"
        if self.atr_form not in ATRS:
            return f"unknown ATR form {self.atr_form!r}"
        for name, rec in self.pins.items():
            if not all(isinstance(v, bytes) for v in (rec.salt, rec.digest)):
                return f"PIN {name!r} reference data is not base64"
            counts = (rec.tries_left, rec.max_tries, rec.iterations)
            if not all(type(v) is int for v in counts):
                return f"PIN {name!r} has a non-integer counter"
            if not 0 <= rec.tries_left <= rec.max_tries <= 15:
                return f"PIN {name!r} counter out of range"
        if not all(isinstance(v, str) for v in asdict(self.holder).values()):
            return "holder data must be text"
        needed = {"juki", "helper"} | ({"auth", "sign"} if self.profile == STANDARD else set())
        if needed - set(self.pins):
            return f"{self.profile} card without PIN {sorted(needed - set(self.pins))[0]!r}"
        if self.profile == STANDARD and (self.pki.sign_key is None or self.pki.sign_cert is None):
            return "standard card without a signing key and certificate"
        return None


_BYTES_FIELDS = {
    "PinRecord": ("salt", "digest"),
    "Pki": tuple(Pki.__dataclass_fields__),
}


_PKI_FIELDS = tuple(Pki.__dataclass_fields__)


@functools.lru_cache(maxsize=8)
def _pki_json(*values: bytes | None) -> dict[str, str | None]:
    """Base64 form of the keys and certificates, cached: they rarely change, counters often."""
    return {
        k: None if v is None else base64.b64encode(v).decode()
        for k, v in zip(_PKI_FIELDS, values, strict=True)
    }


@functools.lru_cache(maxsize=8)
def _pki_text(*values: bytes | None) -> str:
    return json.dumps(_pki_json(*values), separators=(",", ":"))


def _pin_json(rec: PinRecord) -> dict[str, Any]:
    return {
        "salt": base64.b64encode(rec.salt).decode(),
        "digest": base64.b64encode(rec.digest).decode(),
        "iterations": rec.iterations,
        "tries_left": rec.tries_left,
        "max_tries": rec.max_tries,
    }


def _decode_bytes(d: dict[str, Any], kind: type) -> dict[str, Any]:
    names = _BYTES_FIELDS[kind.__name__]
    return {
        k: base64.b64decode(v, validate=True) if k in names and isinstance(v, str) else v
        for k, v in d.items()
    }


# --- stores ---------------------------------------------------------------------------------


class Store:
    """Where a card's state goes when it changes. ``commit`` returns only once durable."""

    def __init__(self) -> None:
        #: Durable writes performed: the emulator's analogue of EEPROM write cycles.
        self.writes = 0

    def commit(self, state: CardState) -> None:
        self.writes += 1

    def describe(self) -> str:
        return "memory"


class MemoryStore(Store):
    """No persistence: the state lives as long as the process."""


class FileStore(Store):
    """One JSON file per card, replaced atomically on every commit."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> CardState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StateError(
                f"no card state at {self.path}; create one with 'myna-emu init --state {self.path}'"
            ) from None
        except OSError as exc:
            raise StateError(f"cannot read card state {self.path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise StateError(f"card state {self.path} is corrupt (not UTF-8 text)") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(f"card state {self.path} is corrupt (not JSON: {exc.msg})") from None
        try:
            return CardState.from_json(doc)
        except StateError as exc:
            raise StateError(f"{self.path}: {exc}") from None

    def commit(self, state: CardState) -> None:
        data = state.to_json_bytes()
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            # A failed write leaves the previous state in place, never half a file.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        super().commit(state)
