"""A tiny PNG reader (zlib + struct) for the rendering tests: 8-bit RGB/RGBA, no interlace."""

from __future__ import annotations

import struct
import zlib
from collections import Counter

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel (truecolour, truecolour + alpha)


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise (a + b) mod 256 over whole rows at once (SWAR on Python integers)."""
    n = len(a)
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    low = int.from_bytes(b"\x7f" * n, "big")
    high = int.from_bytes(b"\x80" * n, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(kind: int, row: bytearray, previous: bytes, bpp: int) -> bytes:
    if kind == 0:
        return bytes(row)
    if kind == 2:
        return _add_bytes(bytes(row), previous)
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            up = previous[i]
            up_left = previous[i - bpp] if i >= bpp else 0
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
            row[i] = (row[i] + pred) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter type {kind}")
    return bytes(row)


def read_rgb(data: bytes) -> tuple[int, int, list[bytes]]:
    """``(width, height, rows)``: each row ``width * 3`` bytes of RGB (alpha dropped)."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, header, compressed = len(_SIGNATURE), b"", bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(
            f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}"
        )
    bpp = _CHANNELS[colour]
    raw = zlib.decompress(bytes(compressed))
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, bpp)
        previous = line
        rows.append(line if bpp == 3 else b"".join(line[i : i + 3] for i in range(0, stride, 4)))
    return width, height, rows


def colour_counts(rows: list[bytes]) -> Counter[bytes]:
    """How many pixels have each RGB colour."""
    counts: Counter[bytes] = Counter()
    for row in rows:
        counts.update(row[i : i + 3] for i in range(0, len(row), 3))
    return counts
