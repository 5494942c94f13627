"""The pbts_receipt extension (docs/bep10.md): the byte-level vectors of the document, parsed
from it and checked against the code both ways, and hostile payloads (malformed, oversized,
wrong realm, forged, naming someone else) that are refused, counted and never crash."""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

import pytest

from receipts import bls
from receipts.format import Receipt, realm_id, time_bucket
from receipts.peer import extension as ext
from receipts.peer import wire

DOC = Path(__file__).resolve().parents[2] / "docs" / "bep10.md"
VECTOR = re.compile(r"```text\nvector (\S+) expect (\S+)\n([0-9a-f\n]+)```")

DOWNLOADER_SK, DOWNLOADER_PK = bls.keygen(bytes(range(32)))
UPLOADER_SK, UPLOADER_PK = bls.keygen(bytes(range(32, 64)))
OTHER_SK, OTHER_PK = bls.keygen(bytes(range(64, 96)))
REALM = realm_id("PBTS test", "https://tracker.example.org")
OTHER_REALM = realm_id("Other site", "https://other.example.org")
INFO_HASH = bytes.fromhex("c9e15763f722f23e98a29decdfae341b98d53056")
NOW = 1_700_000_000
PIECE = 262_144
PIECES = 42  # piece 41 is the last one, 12,345 bytes (docs/receipts.md receipt 2)
RECEIPT_1_SIGNATURE = (
    "a225f7b2d11dafff1370dd343c89dffcb331d8180c491e9fc884f52450d55652c098473d9b1b57d046f4ecc9e9"
    "16eea80fc898c4d19025c26f526b500a921464238b91479553731de67ffad0a0acecce857aeae8ca99d85c9a00"
    "ae8f6a41d2fd"
)


def vectors() -> dict[str, tuple[str, bytes]]:
    """name -> (expected outcome, frame bytes), as written in docs/bep10.md."""
    found = {
        name: (expect, bytes.fromhex(hexdigits.replace("\n", "")))
        for name, expect, hexdigits in VECTOR.findall(DOC.read_text())
    }
    assert len(found) == 11, sorted(found)
    return found


def receipt(**fields) -> bytes:
    """Receipt 1 of docs/receipts.md, with ``fields`` changed."""
    values = dict(
        realm=REALM,
        info_hash=INFO_HASH,
        piece_index=7,
        piece_length=PIECE,
        uploader_pk=UPLOADER_PK,
        downloader_pk=DOWNLOADER_PK,
        time_bucket=time_bucket(NOW),
    )
    values.update(fields)
    return Receipt(**values).to_bytes()


def signed(data: bytes, sk: int = DOWNLOADER_SK) -> ext.SignedReceipt:
    return ext.SignedReceipt(data, bls.sign(sk, data))


def piece_length(info_hash: bytes, index: int) -> int | None:
    if info_hash != INFO_HASH or not 0 <= index < PIECES:
        return None
    return 12_345 if index == PIECES - 1 else PIECE


def checker(**kwargs) -> ext.Checker:
    """The uploader of the vectors: it serves the torrent and sent piece 7 (and 41) to the
    downloader; its clock reads NOW."""
    kwargs.setdefault("served", lambda pk, ih, index: pk == DOWNLOADER_PK and index in (7, 41))
    return ext.Checker(
        realm=REALM, my_pk=UPLOADER_PK, piece_length=piece_length, clock=lambda: NOW, **kwargs
    )


def one_frame(frame: bytes) -> tuple[int, bytes]:
    frames = list(wire.FrameReader().feed(frame))
    assert len(frames) == 1
    return frames[0]


def outcome(frame: bytes) -> str:
    """What the uploader of the vectors does with an extension frame, as the doc's ``expect``."""
    message_id, payload = one_frame(frame)
    assert message_id == wire.EXTENDED
    ext_id, rest = wire.parse_extended(payload)
    assert ext_id == ext.LOCAL_ID
    try:
        message = ext.decode(rest)
    except ext.BadMessage as exc:
        return exc.kind
    if isinstance(message, ext.AckMessage):
        return "ack-" + "-".join(status.name.lower() for _, status in message.entries)
    verdicts = checker().check(DOWNLOADER_PK, message.entries)
    return "-".join(v.status.name.lower() + (f"-{v.kind}" if v.kind else "") for v in verdicts)


# --- the document's vectors ------------------------------------------------------------------


def test_every_vector_of_the_document_has_the_stated_outcome():
    for name, (expect, frame) in vectors().items():
        if name == "bt-handshake":
            parsed = wire.parse_handshake(frame)
            assert (parsed.info_hash, parsed.peer_id, parsed.extensions) == (
                INFO_HASH,
                b"-PB0100-vectorpeer01",
                True,
            )
            assert expect == "handshake"
        elif name == "ext-handshake-uploader":
            message_id, payload = one_frame(frame)
            ext_id, rest = wire.parse_extended(payload)
            assert (message_id, ext_id) == (wire.EXTENDED, wire.EXT_HANDSHAKE)
            info = ext.peer_receipt_info(
                wire.parse_ext_handshake(rest), my_pk=DOWNLOADER_PK, my_realm=REALM
            )
            assert expect == "enabled" and info.enabled, info
            assert (info.remote_id, info.pk, info.realm) == (ext.LOCAL_ID, UPLOADER_PK, REALM)
        else:
            assert outcome(frame) == expect, name


def test_the_code_makes_exactly_the_bytes_of_the_document():
    v = {name: frame for name, (_, frame) in vectors().items()}
    r1 = receipt()
    s1 = bytes.fromhex(RECEIPT_1_SIGNATURE)
    assert bls.sign(DOWNLOADER_SK, r1) == s1
    assert v["bt-handshake"] == wire.encode_handshake(INFO_HASH, b"-PB0100-vectorpeer01")
    assert v["ext-handshake-uploader"] == wire.ext_handshake(
        ext.handshake_fields(UPLOADER_PK, REALM)
    )
    assert v["receipts"] == wire.extended(1, ext.encode_receipts([ext.SignedReceipt(r1, s1)]))
    rid = hashlib.sha256(r1).digest()
    assert rid.hex() == "f36c207f14a3ca4ca3283bb8f174cb7a2723659c51330f809ba126a6acd3703b"
    assert v["ack"] == wire.extended(1, ext.encode_ack([(rid, ext.AckStatus.STORED)]))
    r2 = receipt(piece_index=41, piece_length=12_345)
    assert v["forged"] == wire.extended(
        1, ext.encode_receipts([ext.SignedReceipt(r1, bls.sign(DOWNLOADER_SK, r2))])
    )
    wrong = receipt(realm=OTHER_REALM)
    assert OTHER_REALM.hex().startswith("5fb1894d") and OTHER_REALM.hex().endswith("4a36")
    assert v["wrong-realm"] == wire.extended(1, ext.encode_receipts([signed(wrong)]))
    # The frame sizes the document states.
    assert len(v["receipts"]) == 285
    assert len(wire.extended(1, ext.encode_receipts([signed(r1)] * 32))) == 8_872
    assert (ext.SIGNED_ENTRY, ext.ACK_ENTRY, ext.MAX_PAYLOAD) == (277, 33, 8_866)
    assert 2 + 32 * ext.ACK_ENTRY == 1_058
    assert ext.MAX_STRIKES == 8 and wire.MAX_FRAME == 1 << 20
    text = DOC.read_text()
    for figure in ("8,866", "1,058", "8,872", "**8 strikes**", "1 MiB", "64 KiB"):
        assert figure in text, figure


def test_the_long_vectors_the_document_describes():
    _, frame = vectors()["receipts"]
    cut = (len(frame) - 5).to_bytes(4, "big") + frame[4:-1]
    assert cut[:4].hex() == "00000118"
    assert outcome(cut) == "malformed"
    too_long = bytes((1, 32)) + bytes(ext.MAX_PAYLOAD - 1)
    assert outcome(wire.extended(1, too_long)) == "oversized"
    assert outcome(wire.extended(1, bytes((1, 31)) + bytes(ext.MAX_PAYLOAD - 2))) == "malformed"
    zeros = outcome(wire.extended(1, bytes((1, 32)) + bytes(ext.MAX_PAYLOAD - 2)))
    assert zeros == "-".join(["refused-malformed"] * 32)  # frames, but no receipt parses


# --- handshake rules -------------------------------------------------------------------------


def handshake(changes: dict) -> dict:
    fields = ext.handshake_fields(UPLOADER_PK, REALM)
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({b"m": None}, "no pbts_receipt extension"),
        ({b"m": {b"ut_metadata": 2}}, "no pbts_receipt extension"),
        ({b"m": {ext.NAME: 0}}, "no pbts_receipt extension"),
        ({b"m": {ext.NAME: 256}}, "no pbts_receipt extension"),
        ({b"m": {ext.NAME: b"1"}}, "no pbts_receipt extension"),
        ({ext.KEY_VERSION: 2}, "unsupported pbts_v"),
        ({ext.KEY_PK: UPLOADER_PK[:47]}, "pbts_pk is not 48 bytes"),
        ({ext.KEY_PK: 5}, "pbts_pk is not 48 bytes"),
        ({ext.KEY_REALM: REALM + b"x"}, "pbts_realm is not 32 bytes"),
        ({ext.KEY_REALM: OTHER_REALM}, "another realm"),
        ({ext.KEY_PK: DOWNLOADER_PK}, "the same key as ours"),
        ({ext.KEY_PK: b"\xc0" + bytes(47)}, "pbts_pk is not a valid public key"),
        ({ext.KEY_PK: b"\x8f" + bytes(47)}, "pbts_pk is not a valid public key"),
    ],
)
def test_receipts_stay_off_unless_both_sides_agree(changes, reason):
    info = ext.peer_receipt_info(handshake(changes), my_pk=DOWNLOADER_PK, my_realm=REALM)
    assert (info.enabled, info.reason) == (False, reason)


def test_a_standard_clients_handshake_just_means_no_receipts():
    libtorrent_like = {b"m": {b"ut_metadata": 2, b"ut_pex": 1}, b"v": b"libtorrent 2.0", b"p": 1}
    info = ext.peer_receipt_info(libtorrent_like, my_pk=DOWNLOADER_PK, my_realm=REALM)
    assert not info.enabled


# --- hostile receipts --------------------------------------------------------------------------


def test_each_refusal_kind_is_named_and_nothing_is_stored():
    good = signed(receipt())
    cases = {
        "malformed": ext.SignedReceipt(b"PBTS" + bytes(177), bytes(96)),
        "wrong_realm": signed(receipt(realm=OTHER_REALM)),
        "wrong_piece": signed(receipt(piece_length=PIECE - 1)),
        "not_mine": signed(receipt(uploader_pk=OTHER_PK)),
        "not_signer": signed(receipt(downloader_pk=OTHER_PK), OTHER_SK),
        "stale": signed(receipt(time_bucket=time_bucket(NOW) - ext.PAST_BUCKETS - 1)),
        "unsolicited": signed(receipt(piece_index=8)),
        "forged": ext.SignedReceipt(good.data, bls.sign(OTHER_SK, good.data)),
    }
    assert set(cases) == set(ext.REFUSAL_KINDS)
    verdicts = checker().check(DOWNLOADER_PK, [*cases.values(), good])
    assert [v.kind for v in verdicts] == [*cases, ""]
    assert [v.status for v in verdicts] == [ext.AckStatus.REFUSED] * len(cases) + [
        ext.AckStatus.STORED
    ]
    assert verdicts[-1].receipt_id == hashlib.sha256(good.data).digest()
    assert all(v.reason == ext.REFUSAL_KINDS[v.kind] for v in verdicts[:-1])
    # Other piece-length mistakes and an unknown torrent are wrong_piece too.
    for data in (
        receipt(piece_index=PIECES),
        receipt(piece_index=41),  # the last piece is 12,345 bytes
        receipt(info_hash=bytes(20)),
    ):
        assert checker().check(DOWNLOADER_PK, [signed(data)])[0].kind == "wrong_piece"
    future = receipt(time_bucket=time_bucket(NOW) + 2)
    assert checker().check(DOWNLOADER_PK, [signed(future)])[0].kind == "stale"


def test_duplicates_are_answered_and_not_checked_again():
    good = signed(receipt())
    verdicts = checker().check(DOWNLOADER_PK, [good, good])
    assert [v.status for v in verdicts] == [ext.AckStatus.STORED, ext.AckStatus.DUPLICATE]
    kept = {verdicts[0].receipt_id}
    again = checker(known=kept.__contains__).check(DOWNLOADER_PK, [good])
    assert again[0].status == ext.AckStatus.DUPLICATE and again[0].kind == ""


def test_a_forgery_among_good_receipts_spoils_only_itself():
    goods = [signed(receipt(piece_index=7)), signed(receipt(piece_index=41, piece_length=12_345))]
    bad = ext.SignedReceipt(goods[0].data, goods[1].signature)
    verdicts = checker().check(DOWNLOADER_PK, [goods[0], bad, goods[1]])
    assert [(v.status.name, v.kind) for v in verdicts] == [
        ("STORED", ""),
        ("REFUSED", "forged"),
        ("STORED", ""),
    ]
    verdicts = checker().check(DOWNLOADER_PK, [bad, goods[1]])
    assert [(v.status.name, v.kind) for v in verdicts] == [("REFUSED", "forged"), ("STORED", "")]


def test_random_and_mutated_payloads_never_raise_anything_but_bad_message():
    rng = random.Random(13)
    _, frame = vectors()["receipts"]
    base = frame[6:]
    samples = [os.urandom(rng.randrange(0, 600)) for _ in range(300)]
    for _ in range(300):
        mutated = bytearray(base)
        for _ in range(rng.randrange(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    samples += [bytes((t, c)) + os.urandom(n) for t in (1, 2) for c in (1, 2) for n in (0, 277)]
    decoded = 0
    check = checker()
    for payload in samples:
        try:
            message = ext.decode(payload)
        except ext.BadMessage as exc:
            assert exc.kind in ("malformed", "oversized")
            continue
        decoded += 1
        if isinstance(message, ext.ReceiptsMessage):
            for verdict in check.check(DOWNLOADER_PK, message.entries):
                assert verdict.status in (ext.AckStatus.REFUSED, ext.AckStatus.STORED)
    assert decoded > 100  # mutations of a valid message mostly still frame


def test_encoders_refuse_what_decoders_would_refuse():
    with pytest.raises(ValueError):
        ext.encode_receipts([])
    with pytest.raises(ValueError):
        ext.encode_receipts([signed(receipt())] * 33)
    with pytest.raises(ValueError):
        ext.encode_receipts([ext.SignedReceipt(b"x", bytes(96))])
    with pytest.raises(ValueError):
        ext.encode_ack([(b"short", ext.AckStatus.STORED)])
    with pytest.raises(ValueError):
        ext.handshake_fields(UPLOADER_PK[:47], REALM)


def test_strikes_disconnect_at_the_stated_number():
    strikes = ext.Strikes()
    results = [strikes.add("forged") for _ in range(ext.MAX_STRIKES)]
    assert results == [False] * (ext.MAX_STRIKES - 1) + [True]
    assert strikes.kinds == {"forged": 8}
