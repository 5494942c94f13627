"""receipts.bls: both backends on the Ethereum BLS vectors, byte identity between them, the
cancelling-signatures and rogue-key attacks, bisection and bad-input handling. No database."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from py_ecc.bls.g2_primitives import G2_to_signature
from py_ecc.fields import optimized_bls12_381_FQ2 as FQ2
from pyblst import BlstP1Element, BlstP2Element

from receipts import bls
from receipts.bls import SignedItem, core, find_invalid, get_backend, msm

# Ethereum BLS vectors, carried in the repository (source and licence: vectors/README.md).
VECTORS = Path(__file__).resolve().parent / "vectors" / "bls"
BACKENDS = ["blst", "py_ecc"]
RFC9380_DST = b"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_"
G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)


def _cases(kind: str) -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted((VECTORS / kind).glob("*.json"))]


def _load(path: Path) -> tuple[Any, Any]:
    case = json.loads(path.read_text())
    return case["input"], case["output"]


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    return get_backend(request.param)


def _keys(count: int, tag: bytes = b"k") -> list[tuple[int, bytes]]:
    return [bls.keygen(tag * 32 + bytes([i])) for i in range(count)]


# --- Ethereum vectors -------------------------------------------------------------------------


def test_all_104_vectors_are_present() -> None:
    assert len(list(VECTORS.glob("*/*.json"))) == 104, f"vectors missing under {VECTORS}"


@pytest.mark.parametrize("path", _cases("sign"))
@pytest.mark.parametrize("name", BACKENDS)
def test_sign_vectors(name: str, path: Path) -> None:
    given, expected = _load(path)
    sk, msg = int(given["privkey"], 16), _hex(given["message"])
    if expected is None:
        with pytest.raises(ValueError):
            bls.sign(sk, msg, backend=name)
        return
    sig = bls.sign(sk, msg, backend=name)
    assert sig == _hex(expected)
    assert get_backend(name).verify(bls.sk_to_pk(sk, backend=name), msg, sig)


@pytest.mark.parametrize("path", _cases("verify"))
def test_verify_vectors(backend: Any, path: Path) -> None:
    given, expected = _load(path)
    pk, msg, sig = _hex(given["pubkey"]), _hex(given["message"]), _hex(given["signature"])
    assert backend.verify(pk, msg, sig) is expected


@pytest.mark.parametrize("path", _cases("aggregate"))
@pytest.mark.parametrize("name", BACKENDS)
def test_aggregate_vectors(name: str, path: Path) -> None:
    given, expected = _load(path)
    sigs = [_hex(sig) for sig in given]
    if expected is None:
        with pytest.raises(ValueError):
            bls.aggregate(sigs, backend=name)
        return
    assert bls.aggregate(sigs, backend=name) == _hex(expected)


@pytest.mark.parametrize("path", _cases("aggregate_verify"))
def test_aggregate_verify_vectors(backend: Any, path: Path) -> None:
    given, expected = _load(path)
    pks, msgs = [_hex(pk) for pk in given["pubkeys"]], [_hex(m) for m in given["messages"]]
    assert backend.aggregate_verify(pks, msgs, _hex(given["signature"])) is expected


@pytest.mark.parametrize("path", _cases("fast_aggregate_verify"))
def test_fast_aggregate_verify_vectors(backend: Any, path: Path) -> None:
    """Our aggregate_verify requires distinct messages, so FastAggregateVerify (one message,
    many keys) applies only with one key; with several keys the repeated message is refused
    even when the vector's signature is valid."""
    given, expected = _load(path)
    pks = [_hex(pk) for pk in given["pubkeys"]]
    msg, sig = _hex(given["message"]), _hex(given["signature"])
    if len(pks) == 1:
        assert backend.verify(pks[0], msg, sig) is expected
    assert backend.aggregate_verify(pks, [msg] * len(pks), sig) is (expected and len(pks) == 1)


@pytest.mark.parametrize("path", _cases("batch_verify"))
def test_batch_verify_vectors(backend: Any, path: Path) -> None:
    given, expected = _load(path)
    items = [
        SignedItem((_hex(pk),), (_hex(msg),), _hex(sig))
        for pk, msg, sig in zip(
            given["pubkeys"], given["messages"], given["signatures"], strict=True
        )
    ]
    assert backend.batch_verify(items) is expected
    if backend.name == "blst":
        assert (find_invalid(backend, items) == []) is expected


@pytest.mark.parametrize("path", _cases("deserialization_G1"))
def test_deserialization_g1_vectors(backend: Any, path: Path) -> None:
    """KeyValidate = the vector's deserialization, except that the identity is no key."""
    given, expected = _load(path)
    pk = _hex(given["pubkey"])
    assert backend.key_validate(pk) is (expected and pk != core.G1_INFINITY)


@pytest.mark.parametrize("path", _cases("deserialization_G2"))
def test_deserialization_g2_vectors(backend: Any, path: Path) -> None:
    given, expected = _load(path)
    assert backend.signature_validate(_hex(given["signature"])) is expected


@pytest.mark.parametrize("path", _cases("hash_to_G2"))
def test_hash_to_g2_vectors(backend: Any, path: Path) -> None:
    """RFC 9380 suite BLS12381G2_XMD:SHA-256_SSWU_RO_ (its test DST), compared compressed."""
    given, expected = _load(path)
    x = FQ2([int(c, 16) for c in expected["x"].split(",")])
    y = FQ2([int(c, 16) for c in expected["y"].split(",")])
    point = G2_to_signature((x, y, FQ2.one()))
    assert backend.hash_to_g2(given["msg"].encode(), RFC9380_DST) == point


# --- the two backends agree byte for byte ------------------------------------------------------


def test_signing_is_byte_identical_across_backends() -> None:
    (sk1, pk1), (sk2, _) = _keys(2, b"x")
    msg1, msg2 = b"receipt one", b"receipt two"
    for fn in (bls.sk_to_pk, bls.pop_prove):
        assert fn(sk1, backend="blst") == fn(sk1, backend="py_ecc")
    assert pk1 == bls.sk_to_pk(sk1, backend="py_ecc")
    sig1 = bls.sign(sk1, msg1, backend="blst")
    assert sig1 == bls.sign(sk1, msg1, backend="py_ecc")
    sigs = [sig1, bls.sign(sk2, msg2)]
    assert bls.aggregate(sigs, backend="blst") == bls.aggregate(sigs, backend="py_ecc")
    blst, ref = get_backend("blst"), get_backend("py_ecc")
    assert blst.hash_to_g2(msg1, core.DST_SIGNATURE) == ref.hash_to_g2(msg1, core.DST_SIGNATURE)


def test_verification_answers_are_identical_across_backends() -> None:
    (sk1, pk1), (sk2, pk2) = _keys(2, b"y")
    msg = b"piece"
    sig = bls.sign(sk1, msg)
    flipped = bytes([sig[0], *sig[1:-1], sig[-1] ^ 1])
    cases = [
        (pk1, msg, sig),  # valid
        (pk2, msg, sig),  # wrong key
        (pk1, b"other", sig),  # wrong message
        (pk1, msg, flipped),  # corrupted signature
        (pk1, msg, bls.sign(sk2, msg)),  # someone else's signature
    ]
    answers = {name: [get_backend(name).verify(*case) for case in cases] for name in BACKENDS}
    assert answers["blst"] == answers["py_ecc"] == [True, False, False, False, False]


# --- attacks ---------------------------------------------------------------------------------


def _cancelling_pair() -> tuple[list[SignedItem], bytes, list[bytes], list[bytes]]:
    """Two valid signatures, then sig1 + D and sig2 - D: both invalid, their sum valid."""
    (sk1, pk1), (sk2, pk2) = _keys(2, b"c")
    msgs = [b"receipt A", b"receipt B"]
    delta = BlstP2Element.hash_to_group(b"any point", b"attacker")
    sig1 = BlstP2Element.uncompress(bls.sign(sk1, msgs[0])) + delta
    sig2 = BlstP2Element.uncompress(bls.sign(sk2, msgs[1])) + (-delta)
    forged = [sig1.compress(), sig2.compress()]
    items = [SignedItem((pk,), (m,), s) for pk, m, s in zip([pk1, pk2], msgs, forged, strict=True)]
    return items, bls.aggregate(forged), [pk1, pk2], msgs


def test_cancelling_invalid_signatures_pass_an_aggregate_but_fail_batch(backend: Any) -> None:
    items, summed, pks, msgs = _cancelling_pair()
    assert not backend.verify(pks[0], msgs[0], items[0].sig)
    assert not backend.verify(pks[1], msgs[1], items[1].sig)
    assert backend.aggregate_verify(pks, msgs, summed)  # the plain aggregate check is fooled
    assert not backend.batch_verify(items)  # randomized batch verification is not


def test_without_random_scalars_the_batch_would_be_fooled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scalars are what stops the attack: fixed to 1, the same batch passes."""
    items, _, _, _ = _cancelling_pair()
    backend = get_backend("blst")
    monkeypatch.setattr(core, "random_scalar", lambda: 1)
    assert backend.batch_verify(items)
    monkeypatch.undo()
    assert not backend.batch_verify(items)
    assert find_invalid(backend, items) == [0, 1]


def test_rogue_key_is_refused_by_pop_verify(backend: Any) -> None:
    victim_sk, victim_pk = bls.keygen(b"v" * 32)
    x = 0x1234567890ABCDEF
    g1 = BlstP1Element.uncompress(G1_GENERATOR)
    rogue_pk = (g1.scalar_mul(x) + (-BlstP1Element.uncompress(victim_pk))).compress()
    assert backend.key_validate(rogue_pk)  # a valid point: only the PoP stops it
    # The attack it enables without PoP: victim + rogue = x * g1, so x alone "co-signs" for
    # the victim under FastAggregateVerify-style key aggregation.
    summed = (BlstP1Element.uncompress(victim_pk) + BlstP1Element.uncompress(rogue_pk)).compress()
    assert summed == bls.sk_to_pk(x)
    assert backend.verify(summed, b"m", bls.sign(x, b"m"))
    # The attacker cannot prove possession of rogue_pk's secret key.
    attempts = [bls.pop_prove(x), bls.pop_prove(victim_sk), bls.sign(x, rogue_pk)]
    assert not any(backend.pop_verify(rogue_pk, pop) for pop in attempts)
    assert backend.pop_verify(victim_pk, bls.pop_prove(victim_sk))


def test_pop_and_signature_tags_are_separated() -> None:
    backend = get_backend("blst")
    sk, pk = bls.keygen(b"p" * 32)
    pop = bls.pop_prove(sk)
    assert backend.pop_verify(pk, pop)
    assert not backend.verify(pk, pk, pop)  # a PoP is no signature of the key's bytes
    assert not backend.pop_verify(pk, bls.sign(sk, pk))  # and a signature no PoP


def test_aggregate_verify_refuses_repeated_messages(backend: Any) -> None:
    (sk1, pk1), (sk2, pk2) = _keys(2, b"d")
    summed = bls.aggregate([bls.sign(sk1, b"same"), bls.sign(sk2, b"same")])
    assert not backend.aggregate_verify([pk1, pk2], [b"same", b"same"], summed)
    assert not backend.batch_verify([SignedItem((pk1, pk2), (b"same", b"same"), summed)] * 2)


# --- batch verification and bisection ---------------------------------------------------------


def _signed_items(count: int, signers: int) -> tuple[list[SignedItem], list[tuple[int, bytes]]]:
    keys = _keys(signers, b"s")
    items = []
    for i in range(count):
        sk, pk = keys[i % signers]
        msg = b"receipt %d" % i
        items.append(SignedItem((pk,), (msg,), bls.sign(sk, msg)))
    return items, keys


def test_batch_of_grouped_and_aggregate_items_passes() -> None:
    items, keys = _signed_items(40, 3)  # groups of 13-14 messages: the bucket MSM path
    (sk0, pk0), (sk1, pk1) = keys[0], keys[1]
    agg = bls.aggregate([bls.sign(sk0, b"agg 0"), bls.sign(sk1, b"agg 1")])
    items.append(SignedItem((pk0, pk1), (b"agg 0", b"agg 1"), agg))
    assert get_backend("blst").batch_verify(items)
    assert find_invalid(get_backend("blst"), items) == []


def test_batch_verify_on_py_ecc_matches_blst() -> None:
    items, _ = _signed_items(3, 2)
    swapped = [items[0], SignedItem(items[1].pks, items[1].msgs, items[2].sig), items[2]]
    for name in BACKENDS:
        assert get_backend(name).batch_verify(items)
        assert not get_backend(name).batch_verify(swapped)


def test_find_invalid_isolates_exactly_the_bad_items() -> None:
    items, keys = _signed_items(64, 5)
    bad = sorted(secrets.SystemRandom().sample(range(64), 3))
    other_sk = keys[1][0] if items[bad[0]].pks[0] != keys[1][1] else keys[2][0]
    items[bad[0]] = SignedItem(
        items[bad[0]].pks, items[bad[0]].msgs, bls.sign(other_sk, items[bad[0]].msgs[0])
    )
    items[bad[1]] = SignedItem(items[bad[1]].pks, (b"another message",), items[bad[1]].sig)
    items[bad[2]] = SignedItem(items[bad[2]].pks, items[bad[2]].msgs, bytes(96))  # undecodable
    backend = get_backend("blst")
    assert not backend.batch_verify(items)
    assert find_invalid(backend, items) == bad
    good = [item for i, item in enumerate(items) if i not in bad]
    assert backend.batch_verify(good)


def test_find_invalid_on_py_ecc() -> None:
    items, _ = _signed_items(3, 2)
    items[1] = SignedItem(items[1].pks, items[1].msgs, items[0].sig)
    assert find_invalid(get_backend("py_ecc"), items) == [1]


def test_find_invalid_edge_cases() -> None:
    backend = get_backend("blst")
    assert find_invalid(backend, []) == []
    assert backend.batch_verify([])  # vacuously valid: nothing to credit
    items, _ = _signed_items(2, 2)
    junk = SignedItem((), (), b"")
    assert find_invalid(backend, [junk]) == [0]
    assert find_invalid(backend, [*items, junk]) == [2]


def test_random_scalars_are_fresh_nonzero_and_64_bit() -> None:
    draws = [core.random_scalar() for _ in range(1000)]
    assert all(0 < r < 2**64 for r in draws)
    assert len(set(draws)) == len(draws)
    assert max(draws).bit_length() >= 60


@pytest.mark.parametrize("count", [1, 2, 7, 8, 9, 40, 150])
def test_bucket_msm_equals_scalar_multiplications(count: int) -> None:
    points = [BlstP2Element.hash_to_group(bytes([i]), b"msm") for i in range(count)]
    scalars = [secrets.randbits(64) for _ in points]
    scalars[0] = 2**64 - 1
    expected = BlstP2Element()
    for point, scalar in zip(points, scalars, strict=True):
        expected = expected + point.scalar_mul(scalar)
    assert msm.msm(points, scalars, 64, BlstP2Element) == expected
    with pytest.raises(ValueError):
        msm.msm(points, [2**64] * count, 64, BlstP2Element)


# --- bad input: False, never an exception ------------------------------------------------------

JUNK: list[Any] = [None, "", "a" * 48, 42, b"", bytes(47), bytes(49), [b"x"], object()]


def test_bad_input_returns_false_never_raises(backend: Any) -> None:
    sk, pk = bls.keygen(b"j" * 32)
    sig = bls.sign(sk, b"m")
    assert backend.verify(pk, b"m", sig)
    for junk in JUNK:
        assert backend.key_validate(junk) is False
        assert backend.verify(junk, b"m", sig) is False
        assert backend.verify(pk, b"m", junk) is False
        assert backend.pop_verify(pk, junk) is False
        assert backend.aggregate_verify([pk, junk], [b"m", b"n"], sig) is False
        assert backend.aggregate_verify(junk, junk, sig) is False
        assert backend.batch_verify([SignedItem((junk,), (b"m",), sig)] * 2) is False
    assert backend.verify(pk, "m", sig) is False  # a message is bytes, not text
    assert backend.aggregate_verify([pk], [b"m", b"n"], sig) is False  # lengths differ
    assert backend.batch_verify("not items") is False
    assert backend.key_validate(b"\x00" + pk) is False  # same integer, wrong length
    assert backend.key_validate(core.G1_INFINITY) is False


def test_get_backend_names() -> None:
    assert get_backend().name == "blst"
    assert get_backend("py_ecc").name == "py_ecc"
    with pytest.raises(ValueError):
        get_backend("milagro")


def test_keygen_and_secret_key_rules() -> None:
    assert bls.keygen(b"k" * 32) == bls.keygen(b"k" * 32)
    assert bls.keygen()[0] != bls.keygen()[0]
    with pytest.raises(ValueError):
        bls.keygen(b"short")
    for sk in (0, core.CURVE_ORDER, -1, True, "1"):
        with pytest.raises(ValueError):
            bls.sign(sk, b"m")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bls.aggregate([])
    with pytest.raises(ValueError):
        bls.aggregate([bytes(96)])
