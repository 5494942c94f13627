"""BitTorrent peer wire framing (BEP 3) and the extension protocol's framing (BEP 10).

Pure functions over bytes: no sockets, no asyncio. Every message after the 68-byte handshake is
``u32 length || u8 id || payload`` (big-endian; length counts the id and payload; a length of 0
is a keep-alive).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fastbencode

PROTOCOL = b"BitTorrent protocol"
HANDSHAKE_LENGTH = 1 + len(PROTOCOL) + 8 + 20 + 20  # 68
EXTENSION_BIT = (5, 0x10)
"""BEP 10: reserved byte 5 (0-based), bit 0x10 (the 20th bit from the right)."""
BLOCK_SIZE = 16 * 1024
"""Bytes per request (BEP 3 clients use 16 KiB; larger requests are refused)."""
MAX_FRAME = 1 << 20
"""Largest message accepted (id + payload, bytes): a piece message is 16 KiB + 9, a bitfield
of 8 million pieces 1 MiB. A longer length prefix is a protocol error (disconnect)."""
MAX_EXT_HANDSHAKE = 64 * 1024
"""Largest BEP 10 handshake accepted (bytes)."""

CHOKE, UNCHOKE, INTERESTED, NOT_INTERESTED, HAVE, BITFIELD, REQUEST, PIECE, CANCEL, PORT = range(10)
EXTENDED = 20
EXT_HANDSHAKE = 0
"""BEP 10: extended message id 0 is the extension handshake."""

KEEP_ALIVE = b"\0\0\0\0"
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IB")
_HAVE = struct.Struct(">IBI")
_REQUEST = struct.Struct(">IBIII")
_PIECE_HEADER = struct.Struct(">IBII")
_TRIPLE = struct.Struct(">III")


class ProtocolError(ValueError):
    """Bytes that break BEP 3 / BEP 10 framing: the connection is closed."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """A BEP 3 handshake: ``reserved`` (8 bytes), ``info_hash`` and ``peer_id`` (20 each)."""

    reserved: bytes
    info_hash: bytes
    peer_id: bytes

    @property
    def extensions(self) -> bool:
        """The peer supports the extension protocol (BEP 10)."""
        byte, bit = EXTENSION_BIT
        return bool(self.reserved[byte] & bit)


def encode_handshake(info_hash: bytes, peer_id: bytes, *, extensions: bool = True) -> bytes:
    """The 68-byte handshake; ``extensions`` sets the BEP 10 reserved bit."""
    if len(info_hash) != 20 or len(peer_id) != 20:
        raise ValueError("info_hash and peer_id are 20 bytes")
    reserved = bytearray(8)
    if extensions:
        byte, bit = EXTENSION_BIT
        reserved[byte] |= bit
    return bytes((len(PROTOCOL),)) + PROTOCOL + bytes(reserved) + info_hash + peer_id


def parse_handshake(data: bytes) -> Handshake:
    """Parse 68 handshake bytes. Raises ProtocolError for another protocol string or length."""
    if len(data) != HANDSHAKE_LENGTH or data[0] != len(PROTOCOL) or data[1:20] != PROTOCOL:
        raise ProtocolError("not a BitTorrent handshake")
    return Handshake(bytes(data[20:28]), bytes(data[28:48]), bytes(data[48:68]))


# --- encoders ------------------------------------------------------------------------------------


def simple(message_id: int) -> bytes:
    """choke, unchoke, interested or not interested: length 1, no payload."""
    return _HEADER.pack(1, message_id)


def have(index: int) -> bytes:
    """``have``: the sender completed piece ``index``."""
    return _HAVE.pack(5, HAVE, index)


def bitfield(bits: bytes) -> bytes:
    """``bitfield``: one bit per piece, high bit first, spare bits zero."""
    return _HEADER.pack(1 + len(bits), BITFIELD) + bits


def request(index: int, begin: int, length: int) -> bytes:
    """``request`` of ``length`` bytes at ``begin`` in piece ``index``."""
    return _REQUEST.pack(13, REQUEST, index, begin, length)


def cancel(index: int, begin: int, length: int) -> bytes:
    """``cancel`` of an earlier request (endgame)."""
    return _REQUEST.pack(13, CANCEL, index, begin, length)


def piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes before a ``piece`` message's block of ``length`` bytes."""
    return _PIECE_HEADER.pack(9 + length, PIECE, index, begin)


def extended(ext_id: int, payload: bytes) -> bytes:
    """A BEP 10 extended message: id 20, the receiver's extension id, the payload."""
    return _HEADER.pack(2 + len(payload), EXTENDED) + bytes((ext_id,)) + payload


def ext_handshake(fields: dict[bytes, Any]) -> bytes:
    """The BEP 10 extension handshake (extended id 0) carrying bencoded ``fields``."""
    return extended(EXT_HANDSHAKE, fastbencode.bencode(fields))


# --- decoders ------------------------------------------------------------------------------------


class FrameReader:
    """Splits a byte stream into ``(message id, payload)`` frames; keep-alives give
    ``(-1, b"")``. Raises ProtocolError for a frame longer than ``max_frame`` bytes."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Append ``data`` and yield each complete frame."""
        buffer = self._buffer
        buffer += data
        pos, end = 0, len(buffer)
        try:
            while end - pos >= 4:
                (length,) = _U32.unpack_from(buffer, pos)
                if length == 0:
                    pos += 4
                    yield -1, b""
                    continue
                if length > self.max_frame:
                    raise ProtocolError(f"message of {length} bytes")
                if end - pos - 4 < length:
                    break
                message_id = buffer[pos + 4]
                payload = bytes(buffer[pos + 5 : pos + 4 + length])
                pos += 4 + length
                yield message_id, payload
        finally:
            del buffer[:pos]

    @property
    def buffered(self) -> int:
        """Bytes received but not yet framed."""
        return len(self._buffer)


def parse_index(payload: bytes) -> int:
    """The piece index of a ``have``. Raises ProtocolError unless 4 bytes."""
    if len(payload) != 4:
        raise ProtocolError("have is 4 bytes")
    return _U32.unpack(payload)[0]


def parse_triple(payload: bytes) -> tuple[int, int, int]:
    """(index, begin, length) of a ``request`` or ``cancel``. Raises ProtocolError unless 12
    bytes."""
    if len(payload) != 12:
        raise ProtocolError("request and cancel are 12 bytes")
    index, begin, length = _TRIPLE.unpack(payload)
    return index, begin, length


def parse_piece(payload: bytes) -> tuple[int, int, bytes]:
    """(index, begin, block) of a ``piece``. Raises ProtocolError under 8 bytes."""
    if len(payload) < 8:
        raise ProtocolError("piece is at least 8 bytes")
    index, begin = struct.unpack_from(">II", payload)
    return index, begin, payload[8:]


def parse_extended(payload: bytes) -> tuple[int, bytes]:
    """(extended id, rest) of a BEP 10 message. Raises ProtocolError when empty."""
    if not payload:
        raise ProtocolError("empty extended message")
    return payload[0], payload[1:]


def parse_ext_handshake(rest: bytes) -> dict[bytes, Any]:
    """The decoded BEP 10 handshake dictionary. Raises ProtocolError for anything that is not a
    bencoded dictionary of at most :data:`MAX_EXT_HANDSHAKE` bytes."""
    if len(rest) > MAX_EXT_HANDSHAKE:
        raise ProtocolError("extension handshake too long")
    try:
        value = fastbencode.bdecode(bytes(rest))
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"extension handshake is not bencoded: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("extension handshake is not a dictionary")
    return value


# --- bitfields -----------------------------------------------------------------------------------


def bits_to_bytes(have_flags: Iterable[bool], count: int) -> bytes:
    """Pack ``count`` flags (piece 0 first) into a bitfield, high bit first."""
    out = bytearray((count + 7) // 8)
    for index, flag in enumerate(have_flags):
        if flag:
            out[index >> 3] |= 0x80 >> (index & 7)
    return bytes(out)


def bytes_to_bits(data: bytes, count: int) -> bytearray:
    """One byte (0/1) per piece from a bitfield. Raises ProtocolError for a wrong length or a
    spare bit set (BEP 3: drop the connection)."""
    if len(data) != (count + 7) // 8:
        raise ProtocolError(f"bitfield of {len(data)} bytes for {count} pieces")
    out = bytearray(count)
    for index in range(count):
        if data[index >> 3] & (0x80 >> (index & 7)):
            out[index] = 1
    spare = len(data) * 8 - count
    if spare and data[-1] & ((1 << spare) - 1):
        raise ProtocolError("bitfield spare bits are set")
    return out
