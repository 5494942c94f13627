"""receipts.format: the fixed test vectors of docs/receipts.md, the layout, and every refusal.
No database."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import pytest

from receipts import bls
from receipts.format import (
    DOMAIN,
    RECEIPT_LENGTH,
    TIME_BUCKET_SECONDS,
    VERSION,
    Receipt,
    realm_id,
    time_bucket,
)

# The vectors of docs/receipts.md ("Test vectors"): keys from KeyGen with these IKMs.
DOWNLOADER_IKM = bytes(range(32))
UPLOADER_IKM = bytes(range(32, 64))
DOWNLOADER_PK = bytes.fromhex(
    "9112a0386a2340714ba0c6d2df235377a8679c3899d03e6ef04dba7a50ef49e5"
    "a1dc93105e9374e93ed301b63487e17c"
)
UPLOADER_PK = bytes.fromhex(
    "93936ce6a8e86787fd9038f20abf65075aaf4c52209afba0ec69833d3d37dc26"
    "3db874146c85ca475c4b2d17ab8772ed"
)
REALM = bytes.fromhex("20579086b3e92bc159a3949ffe3a85cdf3da56844dfca487c5b0185f82feff4b")
INFO_HASH = bytes.fromhex("c9e15763f722f23e98a29decdfae341b98d53056")
VECTORS = [
    (
        7,
        262144,
        "504254532d524543454950542d424c530120579086b3e92bc159a3949ffe3a85cdf3da56844dfca487c5b0"
        "185f82feff4bc9e15763f722f23e98a29decdfae341b98d53056000000070004000093936ce6a8e86787fd"
        "9038f20abf65075aaf4c52209afba0ec69833d3d37dc263db874146c85ca475c4b2d17ab8772ed9112a038"
        "6a2340714ba0c6d2df235377a8679c3899d03e6ef04dba7a50ef49e5a1dc93105e9374e93ed301b63487e1"
        "7c0000000001b05515",
        "f36c207f14a3ca4ca3283bb8f174cb7a2723659c51330f809ba126a6acd3703b",
        "a225f7b2d11dafff1370dd343c89dffcb331d8180c491e9fc884f52450d55652c098473d9b1b57d046f4ecc9"
        "e916eea80fc898c4d19025c26f526b500a921464238b91479553731de67ffad0a0acecce857aeae8ca99d85c"
        "9a00ae8f6a41d2fd",
    ),
    (
        41,
        12345,
        "504254532d524543454950542d424c530120579086b3e92bc159a3949ffe3a85cdf3da56844dfca487c5b0"
        "185f82feff4bc9e15763f722f23e98a29decdfae341b98d53056000000290000303993936ce6a8e86787fd"
        "9038f20abf65075aaf4c52209afba0ec69833d3d37dc263db874146c85ca475c4b2d17ab8772ed9112a038"
        "6a2340714ba0c6d2df235377a8679c3899d03e6ef04dba7a50ef49e5a1dc93105e9374e93ed301b63487e1"
        "7c0000000001b05515",
        "533c481e48569da5f8865da9cda20dfe8f2eb89ee40a8fe08e8dc23717cf7ef9",
        "9591ae928ebdbbf1bd7638882217c576e64ea3d9664ccaedcb8d99e0df1c552373c2551ea680fdf1501c583e"
        "8ccda40315baf0378917cbc3dc5d04f535a5e8971695fb74cd175bc17c0ea3169159edefe616442ac2f5b7f1"
        "6a2b3c986d4f932b",
    ),
]
AGGREGATE_OF_BOTH = (
    "8a6522def50571b1ed2eb022290a604e410e8d1918d176a41ddf420f6533229eb138c7b96edabdc678a728d7"
    "8b9a58ed1546644ce88a94cdb12f0b77966ca97ce7b94c8469236e0ef06c48bac3076369a9654084e1674406"
    "a0611fa8ab514a32"
)
DOWNLOADER_POP = (
    "915993b4e43e717ec8079234490be46018bdc7d70e81de1bbec515844a3754cc0a387ddf825a2faa0984fa79"
    "4a96b5a20da605161aa42c1d4028abeb3c52ffbf35d41bd26398e7110d0b6566e0b74b30b3431c4b821cc85a"
    "9d61ad5ffd3f9042"
)


def _receipt(**changes: object) -> Receipt:
    base = Receipt(
        realm=REALM,
        info_hash=INFO_HASH,
        piece_index=7,
        piece_length=262144,
        uploader_pk=UPLOADER_PK,
        downloader_pk=DOWNLOADER_PK,
        time_bucket=time_bucket(1_700_000_000),
    )
    return dataclasses.replace(base, **changes)


def test_vector_inputs() -> None:
    assert bls.keygen(DOWNLOADER_IKM)[1] == DOWNLOADER_PK
    assert bls.keygen(UPLOADER_IKM)[1] == UPLOADER_PK
    assert realm_id("PBTS test", "https://tracker.example.org") == REALM
    assert time_bucket(1_700_000_000) == 28_333_333


@pytest.mark.parametrize(("index", "length", "encoded", "receipt_id", "signature"), VECTORS)
def test_receipt_vectors(
    index: int, length: int, encoded: str, receipt_id: str, signature: str
) -> None:
    receipt = _receipt(piece_index=index, piece_length=length)
    data = receipt.to_bytes()
    assert data.hex() == encoded
    assert receipt.receipt_id.hex() == receipt_id == hashlib.sha256(data).hexdigest()
    assert Receipt.from_bytes(data) == receipt
    sk, _ = bls.keygen(DOWNLOADER_IKM)
    for name in ("blst", "py_ecc"):
        assert bls.sign(sk, data, backend=name).hex() == signature
    assert bls.get_backend("blst").verify(DOWNLOADER_PK, data, bytes.fromhex(signature))


def test_aggregate_and_pop_vectors() -> None:
    """The two vector receipts aggregated (both signed by the downloader, distinct messages),
    and the downloader's proof of possession."""
    sigs = [bytes.fromhex(vector[4]) for vector in VECTORS]
    msgs = [bytes.fromhex(vector[2]) for vector in VECTORS]
    aggregate = bls.aggregate(sigs)
    assert aggregate.hex() == AGGREGATE_OF_BOTH
    backend = bls.get_backend("blst")
    assert backend.aggregate_verify([DOWNLOADER_PK] * 2, msgs, aggregate)
    sk, _ = bls.keygen(DOWNLOADER_IKM)
    assert bls.pop_prove(sk).hex() == DOWNLOADER_POP
    assert backend.pop_verify(DOWNLOADER_PK, bytes.fromhex(DOWNLOADER_POP))


def test_layout_offsets() -> None:
    data = _receipt(
        piece_index=0x01020304, piece_length=0x0A0B0C0D, time_bucket=2**40 + 5
    ).to_bytes()
    assert RECEIPT_LENGTH == len(data) == 181
    assert data[0:16] == DOMAIN == b"PBTS-RECEIPT-BLS"
    assert data[16] == VERSION == 1
    assert data[17:49] == REALM
    assert data[49:69] == INFO_HASH
    assert data[69:73] == bytes([1, 2, 3, 4])
    assert data[73:77] == bytes([0x0A, 0x0B, 0x0C, 0x0D])
    assert data[77:125] == UPLOADER_PK
    assert data[125:173] == DOWNLOADER_PK
    assert struct.unpack(">Q", data[173:181])[0] == 2**40 + 5


def test_every_byte_is_bound_by_the_signature() -> None:
    """Changing any one byte gives either no receipt or another receipt (another id) on which
    the signature fails: bytes cannot be shifted between fields."""
    sk, _ = bls.keygen(DOWNLOADER_IKM)
    receipt = _receipt()
    data = receipt.to_bytes()
    sig = bls.sign(sk, data)
    backend = bls.get_backend("blst")
    for offset in range(RECEIPT_LENGTH):
        changed = bytearray(data)
        changed[offset] ^= 0x01
        try:
            other = Receipt.from_bytes(bytes(changed))
        except ValueError:
            continue
        assert other != receipt and other.receipt_id != receipt.receipt_id
        assert not backend.verify(DOWNLOADER_PK, bytes(changed), sig)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "181 bytes, got 0"),
        (bytes(180), "181 bytes, got 180"),
        (bytes(182), "181 bytes, got 182"),
        ("text", "is bytes"),
        (b"PBTS-RECEIPT-ZZZ" + bytes(165), "wrong domain tag"),
    ],
)
def test_from_bytes_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Receipt.from_bytes(data)


def test_from_bytes_refuses_other_versions_and_bad_fields() -> None:
    data = bytearray(_receipt().to_bytes())
    data[16] = 2
    with pytest.raises(ValueError, match="unsupported receipt version 2"):
        Receipt.from_bytes(bytes(data))
    data = bytearray(_receipt().to_bytes())
    data[73:77] = bytes(4)
    with pytest.raises(ValueError, match="piece_length"):
        Receipt.from_bytes(bytes(data))
    data = bytearray(_receipt().to_bytes())
    data[125:173] = UPLOADER_PK
    with pytest.raises(ValueError, match="same key"):
        Receipt.from_bytes(bytes(data))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"realm": REALM[:31]}, "realm must be 32 bytes"),
        ({"realm": REALM.hex()}, "realm must be bytes"),
        ({"info_hash": bytes(32)}, "info_hash must be 20 bytes"),  # v2 hashes: not this version
        ({"piece_index": -1}, "piece_index must be in"),
        ({"piece_index": 2**32}, "piece_index must be in"),
        ({"piece_length": 0}, "piece_length must be in"),
        ({"piece_length": 2**32}, "piece_length must be in"),
        ({"piece_length": 16384.0}, "piece_length must be an integer"),
        ({"piece_length": True}, "piece_length must be an integer"),
        ({"uploader_pk": UPLOADER_PK[:47]}, "uploader_pk must be 48 bytes"),
        ({"downloader_pk": UPLOADER_PK}, "same key"),
        ({"time_bucket": -1}, "time_bucket must be in"),
        ({"time_bucket": 2**64}, "time_bucket must be in"),
    ],
)
def test_to_bytes_refuses(changes: dict[str, object], reason: str) -> None:
    receipt = _receipt(**changes)
    with pytest.raises(ValueError, match=reason):
        receipt.to_bytes()
    with pytest.raises(ValueError, match=reason):
        _ = receipt.receipt_id


def test_limits_are_accepted() -> None:
    receipt = _receipt(piece_index=2**32 - 1, piece_length=2**32 - 1, time_bucket=2**64 - 1)
    assert Receipt.from_bytes(receipt.to_bytes()) == receipt
    assert _receipt(piece_index=0, piece_length=1, time_bucket=0).to_bytes()[69:77] == bytes(
        [0, 0, 0, 0, 0, 0, 0, 1]
    )


def test_realm_id() -> None:
    realm = realm_id("PBTS", "https://a.example")
    assert len(realm) == 32
    assert realm == realm_id("PBTS", "https://a.example")
    assert realm != realm_id("PBTS", "https://b.example")
    assert realm != realm_id("PBTS2", "https://a.example")
    assert realm_id("ab", "c") != realm_id("a", "bc")  # length prefixes: no ambiguous split
    for bad in ("", None):
        with pytest.raises(ValueError):
            realm_id(bad, "https://a.example")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            realm_id("PBTS", bad)  # type: ignore[arg-type]


def test_time_bucket() -> None:
    assert TIME_BUCKET_SECONDS == 60
    assert time_bucket(0) == 0
    assert time_bucket(59.999) == 0
    assert time_bucket(60) == 1
    assert time_bucket(1_700_000_000.5) == 28_333_333
    for bad in (-1, -0.5, float("nan"), float("inf"), "1700000000", None, True, 1e300):
        with pytest.raises(ValueError):
            time_bucket(bad)  # type: ignore[arg-type]
