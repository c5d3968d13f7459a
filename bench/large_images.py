"""The worst inputs for decoding memory: the largest images the server accepts, each a small file.

    python -m bench.large_images [--parallel 8]      # peak resident memory of `python -m serve` per input

A 4096x4096 canvas with one stroke compresses to tens of KB but is 64 MB as RGBA pixels. The server
is measured from outside: /proc's peak resident size (VmHWM), reset before each request.
"""

import argparse
import io
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.report import ROOT
from bench.servers import our_server, post, process_memory
from serve.decode import DEFAULT_MAX_IMAGE_PIXELS, MAX_WHOLE_DECODE_BYTES

SIDE = math.isqrt(DEFAULT_MAX_IMAGE_PIXELS)  # 4096
# GIF and WebP are decoded whole: the largest accepted is at the whole-decode budget (WebP counts twice).
WHOLE_SIDE = math.isqrt(MAX_WHOLE_DECODE_BYTES)
WEBP_SIDE = math.isqrt(MAX_WHOLE_DECODE_BYTES // 8)
# Issue 12's bounds for these inputs (tests/test_decode_memory.py asserts them, bench.footprint reports them).
PER_REQUEST_BYTES = 30e6        # one request's peak resident above idle
PARALLEL = 8                    # worst-case requests at once ...
PARALLEL_RESIDENT_BYTES = 200e6  # ... keep the whole server under this
STROKE = [(0.3, 0.2), (0.75, 0.2), (0.45, 0.85)]  # a 7, as one stroke across the canvas


def stroke_canvas(mode, background, ink, side=SIDE):
    """A side x side canvas with one thick stroke."""
    image = Image.new(mode, (side, side), background)
    ImageDraw.Draw(image).line([(x * side, y * side) for x, y in STROKE], fill=ink, width=side // 20, joint="curve")
    return image


def encode(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def worst_case_inputs():
    """[(name, body, content type)]: one per way a small file becomes a huge decode; all accepted, all a 7.

    The first is the issue's: a 4096x4096 RGBA canvas export with one stroke.
    """
    transparent = stroke_canvas("RGBA", (0, 0, 0, 0), (20, 20, 20, 255))
    opaque_with_hole = transparent.copy()
    opaque_with_hole.paste((255, 255, 255, 255), (0, 0, SIDE, SIDE // 10))
    opaque_with_hole.paste((255, 255, 255, 255), (0, SIDE * 9 // 10, SIDE, SIDE))
    paper = stroke_canvas("L", 255, 0)
    return [
        ("PNG RGBA, transparent canvas", encode(transparent, "PNG"), "image/png"),
        ("PNG RGBA, opaque border", encode(opaque_with_hole, "PNG"), "image/png"),
        ("PNG grey, 16-bit", encode(Image.fromarray(np.asarray(paper).astype(np.uint16) * 257), "PNG"), "image/png"),
        ("JPEG", encode(paper, "JPEG", quality=90), "image/jpeg"),
        (f"GIF {WHOLE_SIDE}², transparency", encode(stroke_canvas("P", 0, 1, WHOLE_SIDE), "GIF", transparency=0),
         "image/gif"),
        (f"BMP {WHOLE_SIDE}², 1-bit", encode(stroke_canvas("1", 1, 0, WHOLE_SIDE), "BMP"), "image/bmp"),
        (f"WebP {WEBP_SIDE}² RGBA", encode(stroke_canvas("RGBA", (0, 0, 0, 0), (20, 20, 20, 255), WEBP_SIDE), "WEBP",
                                           quality=90, method=0), "image/webp"),
    ]


def clear_peak(pid):
    """Reset the process's peak resident size (VmHWM) to its current size (Linux clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_above_idle(server, bodies, parallel=1):
    """(idle resident, peak resident) bytes while `parallel` clients each send every body once; answers must be 200."""
    pid = server.process.pid
    idle, _ = process_memory(pid)
    clear_peak(pid)

    def send(body_and_type):
        status, answer = post(server.port, *body_and_type)
        if status != 200:
            raise RuntimeError(f"answered {status}: {answer[:200]!r}")

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(send, [item for item in bodies for _ in range(parallel)]))
    return idle, process_memory(pid)[1]


def measure(parallel=PARALLEL, artifacts_dir=ROOT / "artifacts"):
    """{input name: (idle, peak)} one at a time, and (idle, peak) for `parallel` clients of the first input."""
    inputs = worst_case_inputs()
    with tempfile.TemporaryDirectory() as work_dir, our_server(work_dir, artifacts_dir) as server:
        server.start(inputs[0][1])
        single = {name: peak_above_idle(server, [(body, content_type)]) for name, body, content_type in inputs}
        together = peak_above_idle(server, [inputs[0][1:]], parallel)
    return inputs, single, together


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.large_images", description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=PARALLEL, help="clients sending the first input at once")
    args = parser.parse_args(argv)
    inputs, single, together = measure(args.parallel)
    for name, body, _ in inputs:
        idle, peak = single[name]
        print(f"{name:32} {len(body) / 1e3:7.1f} kB  idle {idle / 1e6:6.1f} MB  peak {peak / 1e6:6.1f} MB  "
              f"(+{(peak - idle) / 1e6:.1f} MB)")
    idle, peak = together
    print(f"{args.parallel} x {inputs[0][0]} in parallel: idle {idle / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
