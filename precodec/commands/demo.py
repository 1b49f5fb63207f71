"""``precodec demo``: optimise the bundled sample and compare with a plain Pillow save.

By default the target is the quality the plain save reaches (its SSIMULACRA2
score against the original), so the comparison is bytes at equal measured
quality: what precodec saves without looking worse.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="optimise the bundled sample image and compare with a plain Pillow save")
    p.add_argument("--target", default=None,
                   help="quality target (default: the SSIMULACRA2 score of the plain Pillow save)")
    p.add_argument("--format", default="jpeg", choices=["jpeg", "avif"], help="output format (default jpeg)")
    p.add_argument("-o", "--output", help="where to write the result (default: a temporary folder)")
    p.add_argument("--record", action="store_true", help="print the decision record as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    import precodec
    from precodec.metrics import score
    from precodec.targets import Target

    src = precodec.sample_path()
    with Image.open(src) as im:
        ref = im.convert("RGB")
    # the usual plain save: Pillow's defaults for the format (JPEG: quality 75, 4:2:0)
    buf = io.BytesIO()
    ref.save(buf, args.format.upper())
    plain = buf.getvalue()
    with Image.open(io.BytesIO(plain)) as d:
        plain_s2 = score("ssimulacra2", ref, d.convert("RGB"))
    if args.target is None:
        tgt = Target("ssimulacra2", round(plain_s2, 2))
    else:
        tgt = Target.parse(args.target)
    res = precodec.optimize(src, format=args.format, target=str(tgt), source=src)
    out = args.output or os.path.join(tempfile.mkdtemp(prefix="precodec-demo-"), "sample" + res.extension)
    res.save(out)
    with Image.open(out) as d:  # measure what was written, decoded by plain Pillow
        got_s2 = score("ssimulacra2", ref, d.convert("RGB"))
    w = sys.stdout.write
    w(f"sample: {src} ({ref.width}x{ref.height})\n")
    w(f"{'plain Pillow save (' + args.format + ', defaults)':<34} {len(plain):>8} bytes   SSIMULACRA2 {plain_s2:6.2f}\n")
    w(f"{'precodec (target ' + str(tgt) + ')':<34} {res.size:>8} bytes   SSIMULACRA2 {got_s2:6.2f}   "
      f"{res.record.backend} {res.params}\n")
    w(f"saved {1 - res.size / len(plain):.1%} against the plain save "
      f"({res.record.encodes} encode(s), {res.record.metric_runs} metric run(s)); wrote {out}\n")
    if args.record:
        w(res.record.to_json() + "\n")
    return 0
