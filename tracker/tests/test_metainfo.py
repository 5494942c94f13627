"""The pure .torrent parser and rewriter (``tracker.metainfo``): BEP 3, 27, 47 and 52 rules."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from fastbencode import bdecode, bencode

from tracker import metainfo
from tracker.metainfo import Metainfo, MetainfoError, encode_for_member, parse, rewrite
from tracker.tests.torrents import ORIGINAL_ANNOUNCE, make_torrent_bytes

MAX = 1024 * 1024


def _with_info(**changes: Any) -> bytes:
    """A valid single-file torrent whose info dict is changed (``None`` deletes a key)."""
    top = bdecode(make_torrent_bytes())
    for key, value in changes.items():
        bkey = key.replace("_", " ").encode()
        if value is None:
            top[b"info"].pop(bkey, None)
        else:
            top[b"info"][bkey] = value
    return bencode(top)


def _multi(files: list[dict[bytes, Any]], *, piece_length: int = 16384) -> bytes:
    total = sum(
        f[b"length"] for f in files if isinstance(f, dict) and isinstance(f.get(b"length"), int)
    )
    pieces = b"\x01" * 20 * max(1, -(-total // piece_length))
    info = {b"name": b"dir", b"piece length": piece_length, b"pieces": pieces, b"files": files}
    return bencode({b"info": info})


def _error(data: bytes, *, max_bytes: int = MAX) -> str:
    with pytest.raises(MetainfoError) as err:
        parse(data, max_bytes=max_bytes)
    return str(err.value)


# --- valid input ---------------------------------------------------------------------------


def test_parse_single_file_describes_it():
    meta = parse(make_torrent_bytes(name="movie.mkv", size=100_000), max_bytes=MAX)
    assert meta.name == "movie.mkv"
    assert meta.total_size == 100_000
    assert meta.piece_length == 16384
    assert meta.piece_count == 7  # ceil(100000 / 16384)
    assert meta.files == (("movie.mkv", 100_000),)
    assert meta.is_hybrid is False
    assert meta.was_private is False


def test_parse_info_hash_is_sha1_of_the_original_info_bytes():
    data = make_torrent_bytes()
    meta = parse(data, max_bytes=MAX)
    assert meta.info_hash == hashlib.sha1(bencode(bdecode(data)[b"info"])).hexdigest()
    assert meta.info_hash == metainfo.info_hash_of(data)
    assert len(meta.info_hash) == 40 and meta.info_hash == meta.info_hash.lower()


def test_parse_multi_file_joins_paths_with_slash():
    data = make_torrent_bytes(name="album", files=[("cd1/01.flac", 40_000), ("cover.jpg", 5)])
    meta = parse(data, max_bytes=MAX)
    assert meta.name == "album"
    assert meta.files == (("cd1/01.flac", 40_000), ("cover.jpg", 5))
    assert meta.total_size == 40_005
    assert meta.piece_count == 3


def test_parse_decodes_names_as_utf8_with_replacement():
    data = _with_info(name=b"caf\xc3\xa9 \xff.bin")
    assert parse(data, max_bytes=MAX).name == "café \ufffd.bin"


def test_parse_reports_private_flag():
    assert parse(make_torrent_bytes(private=True), max_bytes=MAX).was_private is True


def test_hybrid_torrent_is_accepted_and_tracked_by_v1_hash():
    data = make_torrent_bytes(hybrid=True, files=[("a.bin", 20_000), ("b.bin", 30_000)])
    meta = parse(data, max_bytes=MAX)
    assert meta.is_hybrid is True
    assert meta.info_hash == hashlib.sha1(bencode(bdecode(data)[b"info"])).hexdigest()
    # The BEP 47 padding file between a.bin and b.bin is not listed and not counted.
    assert meta.files == (("a.bin", 20_000), ("b.bin", 30_000))
    assert meta.total_size == 50_000
    assert meta.piece_count == 4  # 20000 + 12768 padding + 30000 bytes in 16 KiB pieces


def test_single_file_hybrid_is_accepted():
    assert parse(make_torrent_bytes(hybrid=True), max_bytes=MAX).is_hybrid is True


# --- refused input -------------------------------------------------------------------------


def test_oversize_input_is_refused_before_decoding():
    data = make_torrent_bytes()
    assert "too large" in _error(data, max_bytes=len(data) - 1)
    assert parse(data, max_bytes=len(data)).total_size == 100_000


@pytest.mark.parametrize(
    "data",
    [b"", b"d", b"i1", b"x", b"d4:infod", b"01:a", b"i-0e", b"d1:bi1e1:ai2ee", b"d1:ai1e1:ai1ee"],
)
def test_malformed_bencode_is_refused(data):
    assert "bencoding" in _error(data)


def test_trailing_garbage_is_refused():
    assert "bencoding" in _error(make_torrent_bytes() + b"x")
    assert "bencoding" in _error(make_torrent_bytes() + b"de")


@pytest.mark.parametrize("data", [b"le", b"i1e", b"4:spam", b"li1ee"])
def test_top_level_not_a_dict_is_refused(data):
    assert "not a torrent" in _error(data)


def test_missing_info_is_refused():
    assert "no info dictionary" in _error(bencode({b"announce": b"http://x/announce"}))


@pytest.mark.parametrize("info", [b"info", 1, [b"a"]])
def test_info_not_a_dict_is_refused(info):
    assert "not a dictionary" in _error(bencode({b"info": info}))


@pytest.mark.parametrize("name", [None, b"", b" ", 5, [b"a"], b"..", b".", b"a/b", b"a\x00b"])
def test_bad_name_is_refused(name):
    assert "name" in _error(_with_info(name=name))


@pytest.mark.parametrize(
    "piece_length", [None, 0, -16384, b"16384", 16383, 8192, 24576, 2**27, 2**30, 2**31]
)
def test_bad_piece_length_is_refused(piece_length):
    # 128 MiB and 1 GiB pieces are refused: clients make 16 KiB to 64 MiB, and one receipt
    # credits a whole piece (issue 13: a fake torrent of 1 GiB pieces minted credit).
    assert "piece length" in _error(_with_info(piece_length=piece_length))


@pytest.mark.parametrize("piece_length", [2**14, 2**20, 2**26])
def test_piece_lengths_clients_make_are_accepted(piece_length):
    parsed = parse(
        make_torrent_bytes(size=3 * piece_length, piece_length=piece_length), max_bytes=MAX
    )
    assert parsed.piece_length == piece_length


@pytest.mark.parametrize("length", [-1, b"100", [1], None])
def test_bad_single_file_length_is_refused(length):
    message = _error(_with_info(length=length))
    assert "length" in message or "lists no files" in message


def test_negative_file_length_in_multi_file_is_refused():
    files = [{b"length": 40_000, b"path": [b"a"]}, {b"length": -1, b"path": [b"b"]}]
    assert "file length" in _error(_multi(files))


def test_both_length_and_files_is_refused():
    data = _with_info(files=[{b"length": 100_000, b"path": [b"a"]}])
    assert "both single-file and multi-file" in _error(data)


def test_empty_files_list_is_refused():
    assert "lists no files" in _error(_multi([]))


def test_zero_total_size_is_refused():
    assert "no data" in _error(_with_info(length=0, pieces=b""))


def test_pieces_not_a_multiple_of_20_is_refused():
    assert "multiple of 20" in _error(_with_info(pieces=b"\x00" * 139))
    assert "multiple of 20" in _error(_with_info(pieces=None))


def test_pieces_count_not_matching_size_is_refused():
    assert "do not match" in _error(_with_info(pieces=b"\x00" * 20 * 6))
    assert "do not match" in _error(_with_info(pieces=b"\x00" * 20 * 8))


@pytest.mark.parametrize(
    "path",
    [
        [b"..", b"etc", b"passwd"],
        [b"ok", b".."],
        [b"."],
        [b"a/b"],
        [b""],
        [],
        b"a",
        [b"a", 1],
        [b"a\x00"],
    ],
)
def test_unsafe_or_invalid_path_is_refused(path):
    files = [{b"length": 100, b"path": [b"fine"]}, {b"length": 100, b"path": path}]
    assert "path" in _error(_multi(files))


def test_file_entry_not_a_dict_is_refused():
    assert "file entry" in _error(_multi([{b"length": 1, b"path": [b"a"]}, b"x"]))


def test_same_file_twice_is_refused():
    files = [{b"length": 1, b"path": [b"a"]}, {b"length": 1, b"path": [b"a"]}]
    assert "same file twice" in _error(_multi(files))


def test_v2_only_torrent_is_refused_with_explanation():
    message = _error(make_torrent_bytes(v2_only=True))
    assert message == metainfo.V2_ONLY_MESSAGE
    assert "v2-only torrents (BEP 52) are not supported" in message


def test_unknown_meta_version_is_refused():
    assert "meta version" in _error(_with_info(meta_version=3))


def test_hybrid_without_file_tree_is_refused():
    assert "v2" in _error(_with_info(meta_version=2))


# --- rewrite -------------------------------------------------------------------------------


def test_rewrite_makes_public_torrent_private_with_source():
    meta = parse(make_torrent_bytes(private=False), max_bytes=MAX)
    out = rewrite(meta, source="PBTS")
    assert out.info[b"private"] == 1
    assert out.info[b"source"] == b"PBTS"
    assert out.was_private is True
    assert meta.info.get(b"private") is None  # the input is not mutated


def test_rewrite_recomputes_hash_as_sha1_of_the_stored_info_bytes():
    meta = parse(make_torrent_bytes(), max_bytes=MAX)
    out = rewrite(meta, source="PBTS")
    stored = out.to_bytes()
    assert out.info_hash != meta.info_hash
    assert out.info_hash == hashlib.sha1(bencode(bdecode(stored)[b"info"])).hexdigest()
    # Re-parsing the stored bytes gives the same hash: nothing changes between store and serve.
    assert parse(stored, max_bytes=MAX).info_hash == out.info_hash


def test_rewrite_replaces_another_trackers_source():
    meta = parse(make_torrent_bytes(private=True, extra_info={"source": "OTHER"}), max_bytes=MAX)
    out = rewrite(meta, source="PBTS")
    assert out.info[b"source"] == b"PBTS"
    assert out.info_hash != meta.info_hash


def test_rewrite_is_idempotent():
    once = rewrite(parse(make_torrent_bytes(), max_bytes=MAX), source="PBTS")
    twice = rewrite(parse(once.to_bytes(), max_bytes=MAX), source="PBTS")
    assert twice.info_hash == once.info_hash
    assert twice.to_bytes() == once.to_bytes()


def test_rewrite_drops_trackers_and_nodes_and_keeps_the_rest():
    data = make_torrent_bytes(hybrid=True)
    original = bdecode(data)
    out = bdecode(rewrite(parse(data, max_bytes=MAX), source="PBTS").to_bytes())
    for key in (b"announce", b"announce-list", b"nodes"):
        assert key in original and key not in out
    assert out[b"creation date"] == original[b"creation date"]
    assert out[b"created by"] == original[b"created by"]
    assert out[b"piece layers"] == original[b"piece layers"]
    assert out[b"info"][b"file tree"] == original[b"info"][b"file tree"]
    assert out[b"info"][b"pieces"] == original[b"info"][b"pieces"]


def test_rewrite_keeps_hybrid_v1_hash_consistent():
    meta = parse(make_torrent_bytes(hybrid=True, files=[("a", 20_000), ("b", 1)]), max_bytes=MAX)
    out = rewrite(meta, source="PBTS")
    assert out.is_hybrid is True
    assert out.info_hash == hashlib.sha1(bencode(out.info)).hexdigest()


# --- encode_for_member ---------------------------------------------------------------------

ANNOUNCE = "https://pbts.example/announce/0123456789abcdef0123456789abcdef"
COMMENT = "https://pbts.example/torrents/7/"


def test_encode_for_member_sets_announce_and_keeps_info_hash():
    stored = rewrite(parse(make_torrent_bytes(), max_bytes=MAX), source="PBTS")
    served = encode_for_member(stored, announce_url=ANNOUNCE, comment=COMMENT)
    top = bdecode(served)
    assert top[b"announce"] == ANNOUNCE.encode()
    assert top[b"announce-list"] == [[ANNOUNCE.encode()]]
    assert top[b"comment"] == COMMENT.encode()
    assert hashlib.sha1(bencode(top[b"info"])).hexdigest() == stored.info_hash
    assert ORIGINAL_ANNOUNCE.encode() not in served
    assert b"announce" not in bdecode(stored.to_bytes())  # the stored copy stays clean


def test_encode_for_member_lists_other_urls_of_the_tracker_in_the_same_tier():
    stored = rewrite(parse(make_torrent_bytes(), max_bytes=MAX), source="PBTS")
    udp_url = "udp://pbts.example:6969/announce/0123456789abcdef0123456789abcdef"
    served = encode_for_member(
        stored, announce_url=ANNOUNCE, comment=COMMENT, other_urls=(udp_url, "")
    )
    top = bdecode(served)
    assert top[b"announce"] == ANNOUNCE.encode()
    assert top[b"announce-list"] == [[ANNOUNCE.encode(), udp_url.encode()]]
    assert hashlib.sha1(bencode(top[b"info"])).hexdigest() == stored.info_hash


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_encode_for_member_accepts_stored_bytes(wrap):
    stored = rewrite(parse(make_torrent_bytes(hybrid=True), max_bytes=MAX), source="PBTS")
    served = encode_for_member(wrap(stored.to_bytes()), announce_url=ANNOUNCE, comment=COMMENT)
    assert parse(served, max_bytes=MAX).info_hash == stored.info_hash
    assert bdecode(served)[b"announce"] == ANNOUNCE.encode()


def test_encode_for_member_refuses_bytes_without_info():
    with pytest.raises(MetainfoError):
        encode_for_member(b"de", announce_url=ANNOUNCE, comment=COMMENT)
    with pytest.raises(MetainfoError):
        encode_for_member(b"garbage", announce_url=ANNOUNCE, comment=COMMENT)


# --- fuzz ----------------------------------------------------------------------------------


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3:
            buf = buf[:pos]
        else:
            buf[pos:pos] = rng.choice([b"e", b"i", b"d", b"l", b"0:", b"1:", b":", b"-"])
    return bytes(buf)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 2 else 4)
    if kind == 0:
        return rng.choice([0, -1, 1, 16384, 2**40, -(2**70), 2**70])
    if kind == 1:
        return rng.choice([b"", b"..", b"/", b"a/b", b"ok", b"\x00", b"\xff\xfe", b"p"])
    if kind == 2:
        return rng.randbytes(rng.choice([0, 19, 20, 40, 140]))
    if kind == 3:
        return rng.choice([[], {}, [b"a"]])
    if kind == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == 5:
        return {b"length": _random_value(rng, depth + 1), b"path": _random_value(rng, depth + 1)}
    return {rng.choice([b"path", b"length", b"x"]): _random_value(rng, depth + 1)}


INFO_KEYS = [
    b"name",
    b"piece length",
    b"pieces",
    b"length",
    b"files",
    b"private",
    b"meta version",
    b"file tree",
]


def _mutate_structure(rng: random.Random, data: bytes) -> bytes:
    top = bdecode(data)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(INFO_KEYS)
        if rng.random() < 0.3:
            top[b"info"].pop(key, None)
        else:
            top[b"info"][key] = _random_value(rng)
    if rng.random() < 0.1:
        top[b"info"] = _random_value(rng)
    return bencode(top)


def _check_only_metainfo_error(data: bytes) -> bool:
    """Parse, rewrite and serve ``data``; True when it parsed. Other exceptions propagate."""
    try:
        meta = parse(data, max_bytes=4096)
    except MetainfoError:
        return False
    out = rewrite(meta, source="PBTS")
    served = encode_for_member(out, announce_url=ANNOUNCE, comment=COMMENT)
    assert parse(served, max_bytes=1 << 20).info_hash == out.info_hash
    return True


def test_fuzz_only_metainfo_error_is_ever_raised():
    rng = random.Random(20240601)
    seeds = [
        make_torrent_bytes(),
        make_torrent_bytes(name="d", files=[("a/b", 20_000), ("c", 3)]),
        make_torrent_bytes(hybrid=True, files=[("a", 20_000), ("b", 1)]),
        make_torrent_bytes(v2_only=True),
    ]
    parsed = refused = 0
    for i in range(2000):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(64))
        elif kind in (1, 2):
            data = _mutate_bytes(rng, rng.choice(seeds))
        else:
            data = _mutate_structure(rng, rng.choice(seeds[:3]))
        if _check_only_metainfo_error(data):
            parsed += 1
        else:
            refused += 1
    # Both outcomes happen, so the fuzz reaches past the decoder into the rules.
    assert parsed > 20
    assert refused > 1000


def test_metainfo_is_a_frozen_value():
    meta = parse(make_torrent_bytes(), max_bytes=MAX)
    assert isinstance(meta, Metainfo)
    with pytest.raises(AttributeError):
        meta.info_hash = "0" * 40  # type: ignore[misc]
