"""The published TEST keys, and fresh keys on demand (docs/card.md#test-keys)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import cli, published_keys
from emulator.card import Card
from emulator.identity import (
    FRESH_KEYS_ENV,
    card_serial,
    fresh_keys_wanted,
    generate_pki,
    issue_signing,
    revoke_signing,
)
from emulator.published_keys import AUTH, AUTH_CA, ROLES, SIGN, SIGN_CA, published_key


def _public(der: bytes | None) -> rsa.RSAPublicNumbers:
    assert der is not None
    key = serialization.load_der_private_key(der, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key().public_numbers()


def _published(role: str) -> rsa.RSAPublicNumbers:
    return published_key(role).public_key().public_numbers()


@pytest.fixture(autouse=True)
def no_fresh_keys_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(FRESH_KEYS_ENV, raising=False)
    yield


def test_published_keys_are_valid_distinct_rsa_2048() -> None:
    numbers = set()
    for role in ROLES:
        # Full validation here, skipped when the card loads them.
        key = serialization.load_pem_private_key(published_keys._PEMS[role], None)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == 2048
        assert key.public_key().public_numbers().e == 65537
        numbers.add(key.public_key().public_numbers().n)
    assert len(numbers) == len(ROLES) == 4


def test_the_module_says_test_keys() -> None:
    assert published_keys.__doc__ is not None
    assert "TEST keys, published on purpose" in published_keys.__doc__


def test_a_new_pki_uses_the_published_keys_with_certificates_of_its_own() -> None:
    one, two = generate_pki(), generate_pki()
    for pki in (one, two):
        assert _public(pki.auth_ca_key) == _published(AUTH_CA)
        assert _public(pki.sign_ca_key) == _published(SIGN_CA)
        assert _public(pki.auth_key) == _published(AUTH)
        assert _public(pki.sign_key) == _published(SIGN)
        cert = x509.load_der_x509_certificate(pki.auth_cert)
        assert cert.public_key().public_numbers() == _published(AUTH)  # type: ignore[union-attr]
    # Each card keeps its own identity: the certificates (and their serials) are new.
    assert card_serial(one.auth_cert) != card_serial(two.auth_cert)
    assert one.sign_cert != two.sign_cert


def test_fresh_keys_are_generated_on_demand() -> None:
    pki = generate_pki(fresh_keys=True)
    published = {_published(role).n for role in ROLES}
    fresh = [pki.auth_ca_key, pki.sign_ca_key, pki.auth_key, pki.sign_key]
    assert not {_public(der).n for der in fresh} & published
    assert len({_public(der).n for der in fresh}) == 4


def test_the_environment_asks_for_fresh_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not fresh_keys_wanted()
    monkeypatch.setenv(FRESH_KEYS_ENV, "0")
    assert not fresh_keys_wanted()
    monkeypatch.setenv(FRESH_KEYS_ENV, "1")
    assert fresh_keys_wanted()
    pki = generate_pki(with_signing=False)
    assert _public(pki.auth_key) != _published(AUTH)
    assert pki.sign_key is None


def test_reissuing_the_signing_key() -> None:
    pki = generate_pki()
    old_cert = pki.sign_cert
    revoke_signing(pki)
    issue_signing(pki)
    assert _public(pki.sign_key) == _published(SIGN)
    assert pki.sign_cert != old_cert  # a new certificate for the re-issued key
    issue_signing(pki, fresh_keys=True)
    assert _public(pki.sign_key) != _published(SIGN)


def test_myna_emu_init_fresh_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", "--state", str(tmp_path / "a.db")]) == 0
    assert cli.main(["init", "--state", str(tmp_path / "b.db"), "--fresh-keys"]) == 0
    a, b = Card.open(tmp_path / "a.db"), Card.open(tmp_path / "b.db")
    try:
        assert _public(a.state.pki.auth_key) == _published(AUTH)
        assert _public(b.state.pki.auth_key) != _published(AUTH)
    finally:
        a.close()
        b.close()
    assert "--fresh-keys" in _help(["init", "--help"], capsys)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        cli.main(argv)
    return capsys.readouterr().out


def test_certificate_lengths_do_not_vary_with_the_random_serial() -> None:
    """Every serial is 20 bytes in DER, so a card's certificates (and the READ BINARY lengths
    in its traces and golden files) are the same size from one run to the next."""
    pkis = [generate_pki() for _ in range(40)]
    for pki in pkis:
        for der in (pki.auth_cert, pki.sign_cert, pki.auth_ca_cert, pki.sign_ca_cert):
            assert x509.load_der_x509_certificate(der).serial_number.bit_length() == 159
    assert len({len(pki.auth_cert) for pki in pkis}) == 1
    assert len({len(pki.sign_cert) for pki in pkis}) == 1
