"""Card state as data, and its versioned JSON form (``myna-emu export`` / ``import``).

Everything that survives a power cycle lives in :class:`CardState`: profile, quirks, PIN
records (salted hashes and counters, never the values), keys, certificates and holder data.
Where it is kept -- memory, or a card database several processes share -- is
:mod:`emulator.store`'s business. The JSON form is for people who keep test cards in git.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.profiles import ATRS, FACE_AUTH, PROFILES, STANDARD
from emulator.protocol import CHECK_NUMBERS, PINS_OF, SPECS, Pin, Profile

#: Version of the JSON form. Bump on any incompatible change; older files are migrated,
#: newer ones refused. 2: check-number records and the holder's expiry date and security
#: code (a version-1 file imports as a card without check numbers).
STATE_VERSION = 2
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


#: A change of one PIN record, applied by a store inside one transaction; raising aborts it.
PinChange = Callable[[PinRecord], None]


@dataclass
class Holder:
    """The (generated, fictitious) card holder printed on the card and stored in the text AP."""

    name: str
    address: str
    birth_date: str  # YYYYMMDD
    sex: str  # ISO 5218: "1" male, "2" female, "9" not applicable
    my_number: str  # 12 digits, the last one a check digit
    #: Printed on the card; "" on cards issued before they were modelled (then the card holds
    #: no check numbers, docs/card.md#check-numbers).
    expiry: str = ""  # YYYYMMDD
    security_code: str = ""  # 4 digits


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
    #: Keep the verified PINs when the application already selected is selected again
    #: ([model]: not settled by public evidence; off = cleared, as OpenSC's logout expects).
    reselect_keeps_verification: bool = False


@dataclass
class CardState:
    profile: str  # "standard" | "face-auth"
    atr_form: str
    holder: Holder
    pki: Pki
    pins: dict[str, PinRecord]
    quirks: Quirks = field(default_factory=Quirks)
    version: int = STATE_VERSION

    # --- JSON form ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": self.version,
            "profile": self.profile,
            "atr_form": self.atr_form,
            "quirks": dict(vars(self.quirks)),
            "holder": dict(vars(self.holder)),
            "pins": {name: _pin_json(rec) for name, rec in self.pins.items()},
            "pki": {k: None if v is None else _b64(v) for k, v in vars(self.pki).items()},
        }

    @classmethod
    def from_json(cls, doc: Any) -> CardState:
        """The state in a JSON document; ``StateError`` saying which field is wrong."""
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise StateError("not a myna-hil card state (missing or wrong 'format')")
        version = doc.get("version")
        if type(version) is not int or version < 1:
            raise StateError("card state has no valid 'version' (a positive integer)")
        if version > STATE_VERSION:
            raise StateError(
                f"card state version {version} is newer than this myna-hil understands"
                f" ({STATE_VERSION}); upgrade myna-hil"
            )
        pins = _field(doc, "pins", dict)
        pki = _field(doc, "pki", dict)
        return cls.from_parts(
            profile=_field(doc, "profile", str),
            atr_form=_field(doc, "atr_form", str),
            quirks=doc.get("quirks", {}),
            holder=_field(doc, "holder", dict),
            pins={
                str(n): PinRecord(**_decode(r, ("salt", "digest"), f"pins.{n}"))
                if isinstance(r, dict) and set(r) == _PIN_KEYS
                else _bad(f"pins.{n}", f"an object with {', '.join(sorted(_PIN_KEYS))}")
                for n, r in pins.items()
            },
            pki=_decode(pki, _PKI_FIELDS, "pki"),
        )

    @classmethod
    def from_parts(
        cls,
        *,
        profile: Any,
        atr_form: Any,
        quirks: Any,
        holder: Any,
        pins: dict[str, PinRecord],
        pki: dict[str, Any],
    ) -> CardState:
        """A state from decoded parts, validated; ``StateError`` names the first problem."""
        for name, value, keys in (
            ("quirks", quirks, None),
            ("holder", holder, _HOLDER_KEYS),
            ("pki", pki, set(_PKI_FIELDS)),
        ):
            if not isinstance(value, dict) or (keys is not None and set(value) != keys):
                if (
                    name == "holder"
                    and isinstance(value, dict)
                    and (_HOLDER_REQUIRED <= set(value) <= _HOLDER_KEYS)
                ):
                    continue  # expiry and security code are optional (version 1)
                expected = "an object" if keys is None else f"exactly {', '.join(sorted(keys))}"
                _bad(name, expected)
        if set(quirks) - _QUIRK_KEYS:
            _bad("quirks", f"only {', '.join(sorted(_QUIRK_KEYS))}")
        state = cls(
            profile=profile,
            atr_form=atr_form,
            quirks=Quirks(**quirks),
            holder=Holder(**holder),
            pins=pins,
            pki=Pki(**pki),
        )
        problem = state.problem()
        if problem:
            raise StateError(f"card state is inconsistent: {problem}")
        return state

    def problem(self) -> str | None:
        """What makes this state unusable by the card, or ``None``.

        A well-formed document can still hold values the card would trip over at the first
        APDU (a string counter, an unknown profile, a key that is not DER); refuse them when
        the state is loaded instead. Messages name fields, never values.
        """
        if self.profile not in PROFILES:
            return f"'profile' must be one of {', '.join(PROFILES)}"
        if self.atr_form not in ATRS:
            return f"'atr_form' must be one of {', '.join(sorted(ATRS))}"
        if not all(type(v) is bool for v in vars(self.quirks).values()):
            return "quirks must be true or false"
        if not all(isinstance(v, str) for v in vars(self.holder).values()):
            return "holder data must be text"
        for name, rec in self.pins.items():
            where = f"PIN {name!r}"
            if name not in SPECS:
                return f"unknown PIN name (known: {', '.join(SPECS)})"
            if not (isinstance(rec.salt, bytes) and 8 <= len(rec.salt) <= 64):
                return f"{where}: 'salt' must be 8-64 bytes"
            if not (isinstance(rec.digest, bytes) and len(rec.digest) == DIGEST_SIZE):
                return f"{where}: 'digest' must be {DIGEST_SIZE} bytes"
            counts = (rec.tries_left, rec.max_tries, rec.iterations)
            if not all(type(v) is int for v in counts):
                return f"{where}: counters and iterations must be integers"
            if not 1 <= rec.iterations <= MAX_ITERATIONS:
                return f"{where}: 'iterations' must be 1..{MAX_ITERATIONS}"
            if rec.max_tries != SPECS[name].max_tries:
                return f"{where}: 'max_tries' must be {SPECS[name].max_tries}"
            if not 0 <= rec.tries_left <= rec.max_tries:
                return f"{where}: 'tries_left' must be 0..{rec.max_tries}"
        h = self.holder
        if h.expiry and not (len(h.expiry) == 8 and h.expiry.isascii() and h.expiry.isdigit()):
            return "holder 'expiry' must be YYYYMMDD"
        if h.security_code and not (
            len(h.security_code) == 4 and h.security_code.isascii() and h.security_code.isdigit()
        ):
            return "holder 'security_code' must be 4 digits"
        jpki = {"auth", "sign"}
        needed = {str(p) for p in PINS_OF[Profile(self.profile)]}
        if needed - set(self.pins):
            return f"{self.profile} card without PIN {sorted(needed - set(self.pins))[0]!r}"
        if self.profile == FACE_AUTH and jpki & set(self.pins):
            return "a face-authentication card has no JPKI PIN or signing password"
        every = {str(p) for p in CHECK_NUMBERS}
        checks = every & set(self.pins)
        if checks and checks != every:
            return f"card without check number {sorted(every - checks)[0]!r}"
        if Pin.COMMON in self.pins and "juki" not in self.pins:
            return "a common-AP PIN without the Juki PIN"
        if checks and not (h.expiry and h.security_code):
            return "check numbers need the holder's 'expiry' and 'security_code'"
        signing = (self.pki.sign_key, self.pki.sign_cert)
        if self.profile == STANDARD and None in signing:
            return "standard card without a signing key and certificate"
        if self.profile == FACE_AUTH and signing != (None, None):
            return "a face-authentication card has no signing key or certificate"
        return _pki_problem(self.pki)


#: PBKDF2-HMAC-SHA-256 output.
DIGEST_SIZE = 32
#: A bound on the work one comparison may cost (a huge count would hang every VERIFY).
MAX_ITERATIONS = 1_000_000
_PIN_KEYS = {f.name for f in fields(PinRecord)}
_HOLDER_KEYS = {f.name for f in fields(Holder)}
_HOLDER_REQUIRED = _HOLDER_KEYS - {"expiry", "security_code"}
_QUIRK_KEYS = {f.name for f in fields(Quirks)}
_PKI_FIELDS = tuple(f.name for f in fields(Pki))


def _pki_problem(pki: Pki) -> str | None:
    """The first key or certificate that is not what the card needs (DER), or ``None``."""
    for name, value in vars(pki).items():
        if value is None:
            if name in ("sign_key", "sign_cert"):
                continue  # a face-authentication card has none (checked with the profile)
            return f"pki.{name} is missing"
        if not isinstance(value, bytes):
            return f"pki.{name} must be DER bytes"
        try:
            if name.endswith("_cert"):
                x509.load_der_x509_certificate(value)
            else:
                key = serialization.load_der_private_key(
                    value, None, unsafe_skip_rsa_key_validation=True
                )
                if not isinstance(key, rsa.RSAPrivateKey):
                    return f"pki.{name} is not an RSA key"
        except (ValueError, TypeError):
            kind = "X.509 certificate" if name.endswith("_cert") else "PKCS#8 private key"
            return f"pki.{name} is not a DER {kind}"
    return None


def _bad(where: str, expected: str) -> Any:
    raise StateError(f"card state field {where!r} must be {expected}")


def _field(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        _bad(name, "an object" if kind is dict else "text" if kind is str else kind.__name__)
    return value


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _pin_json(rec: PinRecord) -> dict[str, Any]:
    return {
        "salt": _b64(rec.salt),
        "digest": _b64(rec.digest),
        "iterations": rec.iterations,
        "tries_left": rec.tries_left,
        "max_tries": rec.max_tries,
    }


def _decode(d: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, Any]:
    """*d* with the base64 fields among *names* decoded (``None`` stays ``None``)."""
    out = dict(d)
    for k in names:
        v = out.get(k)
        if v is None:
            continue
        if not isinstance(v, str):
            _bad(f"{where}.{k}", "base64 text")
        try:
            out[k] = base64.b64decode(v, validate=True)
        except ValueError:
            _bad(f"{where}.{k}", "base64 text")
    return out


# --- JSON files -----------------------------------------------------------------------------


def load_json(path: str | os.PathLike[str]) -> CardState:
    """A card state from a JSON file (``myna-emu import``); ``StateError`` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise StateError(f"{path} is a directory, not a card state") from None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StateError(f"{path} is not a JSON card state (not UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(f"{path} is not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise StateError(f"{path} is not a card state (nested too deeply)") from None
    try:
        return CardState.from_json(doc)
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from None


def dump_json(state: CardState) -> str:
    """The JSON form, indented for diffs (``myna-emu export``)."""
    return json.dumps(state.to_json(), indent=2, ensure_ascii=False) + "\n"
