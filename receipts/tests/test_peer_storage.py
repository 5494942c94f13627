"""The PBTS peer's metainfo, storage and wire framing: single and multi-file torrents (with BEP 47
padding and empty files), pieces across file boundaries, recheck of partial and damaged data
(resume), unsafe paths refused, the exact info bytes hashed, and BEP 3 / BEP 10 frames."""

from __future__ import annotations

import hashlib
import os
import random
import struct
from pathlib import Path

import fastbencode
import pytest

from receipts.peer import metainfo, storage, wire
from receipts.tests.peer_helpers import make_torrent, write_files

PIECE = 16384


def content(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


MULTI = [
    ("a.bin", content(20_000, 1)),
    ("empty.txt", b""),
    ("sub/dir/b.bin", content(5, 2)),
    ("sub/c.bin", content(40_000, 3)),
]


@pytest.mark.parametrize("padding", [False, True], ids=["plain", "bep47-padding"])
def test_multi_file_pieces_cross_files_and_land_in_the_right_files(tmp_path: Path, padding):
    meta = metainfo.parse(make_torrent(MULTI, name="multi", piece_length=PIECE, padding=padding))
    assert meta.multi_file and meta.private
    assert [f.path for f in meta.files if not f.padding] == [
        ("a.bin",),
        ("empty.txt",),
        ("sub", "dir", "b.bin"),
        ("sub", "c.bin"),
    ]
    assert meta.data_length == 60_005
    assert any(f.padding for f in meta.files) == padding
    source = tmp_path / "source"
    write_files(source, "multi", MULTI, single=False)
    seeder = storage.Storage(meta, source, create=False)
    assert all(seeder.recheck())
    # A download: every piece read from the seeder, checked and written.
    target = storage.Storage(meta, tmp_path / "target", create=True)
    assert not any(target.recheck())
    for index in range(meta.piece_count):
        size = meta.piece_size(index)
        data = b"".join(
            seeder.read_block(index, begin, min(wire.BLOCK_SIZE, size - begin))
            for begin in range(0, size, wire.BLOCK_SIZE)
        )
        assert target.store_if_valid(index, data)
        assert not target.store_if_valid(index, data[:-1] + bytes([data[-1] ^ 1]))
    target.sync()
    for path, data in MULTI:
        assert (tmp_path / "target" / "multi" / path).read_bytes() == data
    assert not list((tmp_path / "target").rglob(".pad"))
    assert all(storage.Storage(meta, tmp_path / "target", create=False).recheck())
    seeder.close()
    target.close()
    target.close()


def test_resume_rechecks_partial_and_damaged_data(tmp_path: Path):
    data = content(10 * PIECE + 123, 4)
    meta = metainfo.parse(make_torrent([("f.bin", data)], name="f.bin", single=True))
    assert not meta.multi_file and meta.piece_count == 11 and meta.piece_size(10) == 123
    partial = bytearray(data[: 6 * PIECE])
    partial[3 * PIECE + 7] ^= 0xFF  # piece 3 damaged
    (tmp_path / "f.bin").write_bytes(partial)
    have = storage.Storage(meta, tmp_path, create=True).recheck()
    assert list(have) == [1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0]
    assert (tmp_path / "f.bin").stat().st_size == len(data)  # extended, sparse
    # Seeding from a directory without the file: nothing, no error, nothing created.
    empty = storage.Storage(meta, tmp_path / "none", create=False)
    assert not any(empty.recheck())
    assert empty.read_block(0, 0, 10) is None
    assert not (tmp_path / "none").exists()


def test_the_info_hash_is_of_the_exact_info_bytes():
    info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
    data = b"d8:announce3:abc7:comment1:z4:info" + info + b"e"
    meta = metainfo.parse(data)
    assert meta.info_hash == hashlib.sha1(info).digest()
    assert metainfo.info_bytes(data) == info
    # Non-canonical bencoding (keys out of order) is refused rather than hashed differently.
    unsorted = b"d4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
    with pytest.raises(metainfo.MetainfoError, match="not bencoded"):
        metainfo.parse(b"d4:info" + unsorted + b"e")


@pytest.mark.parametrize(
    ("info_changes", "message"),
    [
        ({b"name": b".."}, "unsafe name"),
        ({b"name": b"a/b"}, "unsafe name"),
        ({b"name": b""}, "unsafe name"),
        ({b"name": b"\xff"}, "not UTF-8"),
        ({b"files": [{b"length": 5, b"path": [b"..", b"x"]}]}, "unsafe path component"),
        ({b"files": [{b"length": 5, b"path": []}]}, "non-empty list"),
        ({b"files": [{b"length": -1, b"path": [b"x"]}]}, "non-negative"),
        ({b"piece length": 0}, "positive"),
        ({b"pieces": bytes(19)}, "multiple of 20"),
        ({b"pieces": bytes(40)}, "2 piece hashes for 5 bytes"),
        ({b"pieces": None}, "v2-only"),
    ],
)
def test_bad_torrents_are_refused_with_a_reason(info_changes, message):
    info = {b"name": b"x", b"length": 5, b"piece length": PIECE, b"pieces": bytes(20)}
    info.update(info_changes)
    if b"files" in info_changes:
        del info[b"length"]
    info = {k: v for k, v in info.items() if v is not None}
    with pytest.raises(metainfo.MetainfoError, match=message):
        metainfo.parse(fastbencode.bencode({b"info": info}))


def test_trackers_and_unreadable_files(tmp_path: Path):
    data = make_torrent(
        [("f", b"x")],
        single=True,
        announce="http://h/announce/k",
        announce_list=[["http://h/announce/k", "udp://h:6969/announce/k"], ["http://b/a"]],
    )
    meta = metainfo.parse(data)
    assert meta.trackers == (("http://h/announce/k", "udp://h:6969/announce/k"), ("http://b/a",))
    no_list = metainfo.parse(make_torrent([("f", b"x")], single=True, announce="http://h/a"))
    assert no_list.trackers == (("http://h/a",),)
    with pytest.raises(metainfo.MetainfoError, match="cannot read"):
        metainfo.load(tmp_path / "missing.torrent")
    (tmp_path / "junk.torrent").write_bytes(b"not bencode")
    with pytest.raises(metainfo.MetainfoError, match="not bencoded"):
        metainfo.load(tmp_path / "junk.torrent")


# --- wire ------------------------------------------------------------------------------------


def test_frames_split_at_any_boundary():
    messages = [
        wire.KEEP_ALIVE,
        wire.simple(wire.INTERESTED),
        wire.have(7),
        wire.bitfield(b"\xf0"),
        wire.request(1, 16384, 16384),
        wire.piece_header(1, 0, 5) + b"hello",
        wire.cancel(1, 16384, 16384),
        wire.ext_handshake({b"m": {b"pbts_receipt": 1}}),
    ]
    stream = b"".join(messages)
    for cut in range(1, len(stream)):
        reader = wire.FrameReader()
        frames = list(reader.feed(stream[:cut])) + list(reader.feed(stream[cut:]))
        assert len(frames) == len(messages) and reader.buffered == 0
    reader = wire.FrameReader()
    frames = [f for byte in stream for f in reader.feed(bytes([byte]))]
    assert frames[0] == (-1, b"")
    assert frames[2] == (wire.HAVE, struct.pack(">I", 7))
    assert wire.parse_triple(frames[4][1]) == (1, 16384, 16384)
    assert wire.parse_piece(frames[5][1]) == (1, 0, b"hello")
    ext_id, rest = wire.parse_extended(frames[7][1])
    assert ext_id == 0 and wire.parse_ext_handshake(rest) == {b"m": {b"pbts_receipt": 1}}


def test_wire_refuses_what_breaks_framing():
    with pytest.raises(wire.ProtocolError):
        list(wire.FrameReader().feed(struct.pack(">I", wire.MAX_FRAME + 1)))
    with pytest.raises(wire.ProtocolError):
        wire.parse_handshake(b"\x13BitTorrent protocoX" + bytes(48))
    with pytest.raises(wire.ProtocolError):
        wire.parse_ext_handshake(b"li1ee")
    with pytest.raises(wire.ProtocolError):
        wire.parse_ext_handshake(b"d1:m")
    with pytest.raises(wire.ProtocolError):
        wire.parse_triple(bytes(11))
    with pytest.raises(wire.ProtocolError):
        wire.bytes_to_bits(b"\xff", 7)  # spare bit set
    with pytest.raises(wire.ProtocolError):
        wire.bytes_to_bits(b"\xfe\x00", 7)  # wrong length
    assert list(wire.bytes_to_bits(b"\xa0", 3)) == [1, 0, 1]
    assert wire.bits_to_bytes([1, 0, 1], 3) == b"\xa0"
    hs = wire.parse_handshake(wire.encode_handshake(bytes(20), b"p" * 20, extensions=False))
    assert not hs.extensions
    assert len(os.urandom(1)) == 1
