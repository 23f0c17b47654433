"""The card itself (issue 15): signatures against OpenSSL, card creation, memory per card.

* COMPUTE DIGITAL SIGNATURE (``80 2A 00 97``, a SHA-256 DigestInfo, as OpenSC sends it)
  through the in-process transport, against ``cryptography``'s PKCS#1 v1.5 sign of the same
  digest with the same key, measured in the same run (``ratio_to_openssl``; target <= 1.2x).
  The raw form no OpenSSL primitive pads (P1 ``01``, the bare hash) is reported beside it.
* Making an in-process card (the published TEST keys, the holder's EFs cached) and the
  memory one card holds (``tracemalloc``, ``kib_per_card``).

Benchmarks report; they never assert a time.
"""

from __future__ import annotations

import gc
import hashlib
import statistics
import time
import timeit
import tracemalloc
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from emulator.card import Card
from emulator.grammar.ids import SHA256_DIGEST_INFO_PREFIX
from harness.cards import new_card, new_state_for
from harness.inprocess import InProcessTransport
from tests.support.cards import fresh_card, template_pki

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
VERIFY_AUTH = bytes.fromhex("002000980431323334")
DIGEST = hashlib.sha256(b"myna-hil benchmark message").digest()
DIGEST_INFO = SHA256_DIGEST_INFO_PREFIX + DIGEST
#: ``80 2A P1 97``: the auth key by SFI, Le 00 (256 bytes).
SIGN_DIGEST_INFO = bytes.fromhex("802A0097") + bytes([len(DIGEST_INFO)]) + DIGEST_INFO + b"\0"
SIGN_BARE_HASH = bytes.fromhex("802A0197") + bytes([len(DIGEST)]) + DIGEST + b"\0"
CARDS_MEASURED = 50


def _median_seconds(fn: Any, number: int, repeat: int = 7) -> float:
    return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))


@pytest.fixture(scope="module")
def auth_key() -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(template_pki().auth_key, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _openssl_sign(key: rsa.RSAPrivateKey) -> bytes:
    return key.sign(DIGEST, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


@pytest.fixture(scope="module")
def openssl_median(auth_key: rsa.RSAPrivateKey) -> float:
    """OpenSSL's PKCS#1 v1.5 signature of the same digest with the same key."""
    return _median_seconds(lambda: _openssl_sign(auth_key), 50)


@pytest.fixture
def logged_in() -> InProcessTransport:
    t = InProcessTransport(fresh_card())
    assert t.transmit(SELECT_JPKI) == b"\x90\x00"
    assert t.transmit(VERIFY_AUTH) == b"\x90\x00"
    return t


def _report(benchmark: Any, baseline: float) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_us"] = round(median * 1e6, 1)
    benchmark.extra_info["openssl_median_us"] = round(baseline * 1e6, 1)
    benchmark.extra_info["ratio_to_openssl"] = round(median / baseline, 3)


def _interleaved_ratio(subject: Any, floor: Any, number: int = 20) -> float:
    """Median CPU time of *subject* over *floor*'s, in alternating batches (same load)."""
    subject_times, floor_times = [], []
    for _ in range(15):
        subject_times.append(timeit.timeit(subject, number=number, timer=time.process_time))
        floor_times.append(timeit.timeit(floor, number=number, timer=time.process_time))
    return statistics.median(subject_times) / statistics.median(floor_times)


@pytest.mark.benchmark(group="signature")
def test_bench_openssl_sign_baseline(
    benchmark: Any, auth_key: rsa.RSAPrivateKey, openssl_median: float
) -> None:
    signature = benchmark(_openssl_sign, auth_key)
    auth_key.public_key().verify(
        signature, DIGEST, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    _report(benchmark, openssl_median)


@pytest.mark.benchmark(group="signature")
def test_bench_signature_apdu(
    benchmark: Any,
    logged_in: InProcessTransport,
    auth_key: rsa.RSAPrivateKey,
    openssl_median: float,
) -> None:
    """Target (issue 15): <= 1.2x OpenSSL's sign of the same input (``ratio_to_openssl``:
    timed interleaved with it after the benchmark)."""
    response = benchmark(logged_in.transmit, SIGN_DIGEST_INFO)
    assert response[-2:] == b"\x90\x00"
    assert response[:-2] == _openssl_sign(auth_key)  # deterministic: the very same bytes
    _report(benchmark, openssl_median)
    benchmark.extra_info["ratio_to_openssl"] = round(
        _interleaved_ratio(
            lambda: logged_in.transmit(SIGN_DIGEST_INFO), lambda: _openssl_sign(auth_key)
        ),
        3,
    )


@pytest.mark.benchmark(group="signature")
def test_bench_signature_apdu_raw_form(
    benchmark: Any, logged_in: InProcessTransport, openssl_median: float
) -> None:
    """P1 01 (the bare hash, no DigestInfo): no OpenSSL primitive pads it, Python's pow does."""
    response = benchmark.pedantic(
        logged_in.transmit, args=(SIGN_BARE_HASH,), rounds=30, warmup_rounds=1
    )
    assert response[-2:] == b"\x90\x00" and len(response) == 258
    _report(benchmark, openssl_median)


@pytest.mark.benchmark(group="card")
def test_bench_card_creation(benchmark: Any) -> None:
    """A fresh in-process card as the plugin's ``myna_card`` and the scenarios make it: the
    run's keys and holder, new PIN records and file model (the holder's EFs are cached)."""
    new_card()  # the run's PKI, the holder's EFs and the loaded keys, once per process
    card = benchmark(new_card)
    assert card.state.pins["auth"].tries_left == 3


@pytest.mark.benchmark(group="card")
def test_bench_card_creation_new_holder(benchmark: Any) -> None:
    """A card with a holder of its own (random, as ``myna-emu init``): its text and surface
    EFs are encoded and signed anew."""
    fresh_card()
    card = benchmark(fresh_card)
    assert card.state.pins["auth"].tries_left == 3


@pytest.mark.benchmark(group="card")
def test_bench_memory_per_card(benchmark: Any) -> None:
    """Memory an in-process card holds (file model, session; its state apart), by
    ``tracemalloc``: what *CARDS_MEASURED* more live ``myna_card``-style cards cost, per
    card. Time: building ten."""
    new_card()
    states = [new_state_for() for _ in range(CARDS_MEASURED)]  # outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cards = [Card(state) for state in states]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(cards) == CARDS_MEASURED
    card_bytes = (after - before) / CARDS_MEASURED
    states_bytes = _state_bytes()
    benchmark.pedantic(lambda: [Card(s) for s in states[:10]], rounds=5)
    benchmark.extra_info["kib_per_card"] = round(card_bytes / 1024, 1)
    benchmark.extra_info["kib_per_state"] = round(states_bytes / 1024, 1)
    benchmark.extra_info["cards"] = CARDS_MEASURED


def _state_bytes() -> float:
    """Memory of one card state (PIN records, a copy of the run's PKI, holder)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        states = [new_state_for() for _ in range(CARDS_MEASURED)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(states) == CARDS_MEASURED
    return (after - before) / CARDS_MEASURED
