"""Small generated placeholder images for the surface AP's card-face entries [model].

Real cards hold the name and address as rendered images, the photo as JPEG 2000 [card]. The
emulator has no renderer and no photo: these are valid, tiny images (a grey square), so a
client that decodes them gets a picture and not an error.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The JP2 signature box (ISO 15444-1 annex I).
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width: int = 16, height: int = 8, grey: int = 0xC0) -> bytes:
    """An 8-bit greyscale PNG of one flat shade."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes((grey,)) * width for _ in range(height))
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def j2k_codestream(width: int = 8, height: int = 8) -> bytes:
    """A JPEG 2000 codestream of one 8-bit component whose only packet is empty: it
    decodes to a flat mid-grey image (ISO 15444-1: an empty packet header is one 0 bit)."""
    siz = struct.pack(">HIIIIIIIIHBBB", 0, width, height, 0, 0, width, height, 0, 0, 1, 7, 1, 1)
    # COD: no precincts, LRCP, 1 layer, no MCT; 0 decomposition levels, 64x64 code-blocks,
    # no bypass, 5-3 reversible wavelet.
    cod = struct.pack(">BBHBBBBBB", 0, 0, 1, 0, 0, 4, 4, 0, 1)
    qcd = struct.pack(">BB", 0x40, 8 << 3)  # no quantisation, 2 guard bits, exponent 8
    tile = b"\xff\x93" + b"\x00"  # SOD, then the empty packet
    sot = struct.pack(">HHIBB", 10, 0, 12 + len(tile), 0, 1)
    return (
        b"\xff\x4f"
        + b"\xff\x51"
        + struct.pack(">H", 2 + len(siz))
        + siz
        + b"\xff\x52"
        + struct.pack(">H", 2 + len(cod))
        + cod
        + b"\xff\x5c"
        + struct.pack(">H", 2 + len(qcd))
        + qcd
        + b"\xff\x90"
        + sot
        + tile
        + b"\xff\xd9"
    )


def jp2(width: int = 8, height: int = 8) -> bytes:
    """The codestream in a JP2 file (signature, file type, header, codestream boxes)."""
    ihdr = _box(b"ihdr", struct.pack(">IIHBBBB", height, width, 1, 7, 7, 0, 0))
    colr = _box(b"colr", struct.pack(">BBBI", 1, 0, 0, 17))  # enumerated: greyscale
    return (
        _box(b"jP  ", b"\r\n\x87\n")
        + _box(b"ftyp", b"jp2 " + struct.pack(">I", 0) + b"jp2 ")
        + _box(b"jp2h", ihdr + colr)
        + _box(b"jp2c", j2k_codestream(width, height))
    )
