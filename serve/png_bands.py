"""Decode a PNG a band of rows at a time, so that a huge canvas never exists at full size in memory.

A 73 KB PNG can hold a 4096x4096 RGBA canvas: 64 MB once decoded. Here the compressed rows are
inflated as a stream, and each band is handed to Pillow as a small PNG of its own, so Pillow still
does all the decoding (filters, bit depths, palettes, transparency) and only one band is alive at once.

PNG filters refer to the previous row, so each band's own PNG starts with that row, unfiltered: it
is recovered by decoding the band once more as plain bytes (an 8-bit image with the same bytes per
pixel, which the filters then treat identically). That covers every non-interlaced PNG with up to
4 bytes per pixel; interlaced and 16-bit colour PNGs are decoded whole by the caller.
"""

import io
import itertools
import struct
import zlib

from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # channels per PNG colour type
# An 8-bit colour type per bytes-per-pixel: its filters see the same bytes as the real image's.
BYTES_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # grey, grey + alpha, RGB, RGBA
# Chunks the band PNGs keep: the ones that change how Pillow reads the pixels.
PIXEL_CHUNKS = (b"PLTE", b"tRNS")


class PngFormatError(ValueError):
    """The PNG's structure is broken."""


def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def read_chunks(data):
    """(kind, payload) for each chunk, payloads as memoryviews of `data`; stops at IEND."""
    if not data.startswith(SIGNATURE):
        raise PngFormatError("not a PNG")
    view, offset = memoryview(data), len(SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[offset:offset + 8])
        payload = view[offset + 8:offset + 8 + length]
        if len(payload) != length:
            raise PngFormatError(f"truncated {kind.decode('latin-1')} chunk")
        yield kind, payload
        if kind == b"IEND":
            return
        offset += 12 + length
    raise PngFormatError("no IEND chunk")


class PngHeader:
    """What banding needs from IHDR, and whether it can band this file at all."""

    def __init__(self, payload):
        if len(payload) != 13:
            raise PngFormatError("bad IHDR chunk")
        self.width, self.height, self.depth, self.colour_type, _, _, self.interlace = struct.unpack(">IIBBBBB", payload)
        if self.colour_type not in CHANNELS:
            raise PngFormatError(f"unknown colour type {self.colour_type}")
        bits = CHANNELS[self.colour_type] * self.depth
        self.bytes_per_pixel = max(1, bits // 8)
        self.stride = (self.width * bits + 7) // 8  # bytes of one unfiltered row

    @property
    def bandable(self):
        return self.interlace == 0 and self.bytes_per_pixel in BYTES_COLOUR_TYPE


def is_bandable(data):
    """Whether png_bands can decode this file (a non-interlaced PNG of at most 4 bytes per pixel)."""
    try:
        kind, payload = next(read_chunks(data))
        return kind == b"IHDR" and PngHeader(payload).bandable
    except (PngFormatError, StopIteration, struct.error):
        return False


def filtered_rows(chunks, header):
    """Each row as stored (filter byte + stride bytes), inflated a little at a time."""
    inflater = zlib.decompressobj()
    row_bytes = 1 + header.stride
    pending, produced = bytearray(), 0
    for kind, payload in chunks:
        if kind != b"IDAT":
            continue
        data = payload
        while data and produced < header.height:
            pending += inflater.decompress(data, 1 << 20)
            data = inflater.unconsumed_tail
            while len(pending) >= row_bytes and produced < header.height:
                yield bytes(pending[:row_bytes])
                del pending[:row_bytes]
                produced += 1
    if produced < header.height:
        raise PngFormatError(f"image data ends after {produced} of {header.height} rows")


def open_band(extra_chunks, width, height, depth, colour_type, rows):
    """A small PNG (not interlaced) holding `rows`, opened and decoded by Pillow."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
    png = b"".join([SIGNATURE, ihdr, *extra_chunks,
                    chunk(b"IDAT", zlib.compress(b"".join(rows), 0)), chunk(b"IEND", b"")])
    image = Image.open(io.BytesIO(png), formats=["PNG"])
    image.load()
    return image


def png_bands(data, band_rows):
    """Yield the image as consecutive PIL images of `band_rows` rows (the last may be shorter).

    Each is what Pillow would give for those rows of the whole file: same mode, palette and
    transparency. Raises PngFormatError if the file's structure is broken.
    """
    chunks = read_chunks(data)
    kind, payload = next(chunks)
    if kind != b"IHDR":
        raise PngFormatError("IHDR is not the first chunk")
    header = PngHeader(payload)
    assert header.bandable, "callers check is_bandable first"
    extra, following = [], []
    for kind, payload in chunks:
        if kind == b"IDAT":
            following.append((kind, payload))
            break
        if kind in PIXEL_CHUNKS:
            extra.append(chunk(kind, bytes(payload)))
    rows = filtered_rows(itertools.chain(following, chunks), header)
    colour_type = BYTES_COLOUR_TYPE[header.bytes_per_pixel]
    carrier_width = header.stride // header.bytes_per_pixel
    # An 8-bit image without palette or transparency is its own carrier: no second decode.
    same_as_carrier = header.depth == 8 and header.colour_type == colour_type and not extra
    previous = bytes(header.stride)  # the row above the first is all zeros, as the PNG standard says
    band = []
    for index, row in enumerate(rows, 1):
        band.append(row)
        if len(band) < band_rows and index < header.height:
            continue
        # The same bytes as an 8-bit image, after the previous row as an unfiltered (type 0) row.
        carrier = open_band([], carrier_width, len(band) + 1, 8, colour_type, [b"\0" + previous, *band])
        previous = carrier.crop((0, carrier.height - 1, carrier_width, carrier.height)).tobytes()
        if same_as_carrier:
            yield carrier.crop((0, 1, header.width, carrier.height))
        else:
            unfiltered = carrier.tobytes()[header.stride:]
            raw_rows = [b"\0" + unfiltered[start:start + header.stride] for start in range(0, len(unfiltered), header.stride)]
            yield open_band(extra, header.width, len(band), header.depth, header.colour_type, raw_rows)
        band = []


def exif_payload(data):
    """The bytes of the PNG's eXIf chunk, wherever it is, or None."""
    try:
        return next((bytes(payload) for kind, payload in read_chunks(data) if kind == b"eXIf"), None)
    except (PngFormatError, struct.error):
        return None
