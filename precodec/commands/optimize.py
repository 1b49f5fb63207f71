"""``precodec optimize``: the batch optimizer.

Usage::

    precodec optimize PATH... (-o OUTDIR | --in-place | --dry-run | --compare)
        [--target ssimulacra2:80] [--format auto|jpeg|avif|learned] [--denoise off|auto|clean]
        [--jobs N] [--executor local|threads|processes|dask://HOST:PORT]
        [--min-saving 2%] [--report report.json] [--html report.html]

Exit status: 0 every file was handled (written, kept, skipped; target misses
are reported, not failures), 1 at least one file failed, 2 bad usage or
options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EPILOG = """\
safety: writes are atomic; --in-place replaces a file only when the result meets the target,
is smaller by --min-saving and decodes; a rerun skips finished work and never recompresses
precodec's own output (manifest .precodec-manifest.jsonl + a JPEG COM marker).

exit status: 0 all files handled (misses are reported), 1 some file failed, 2 usage, 130 interrupted.
"""


def _percent(text: str) -> float:
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage like 2% or 0.02") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0% and 100%")
    return v


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("optimize", help="optimise folders of images (batch, parallel, resumable)",
                       description="Optimise images in place or into a folder, at a perceptual quality target.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-o", "--out-dir", metavar="OUTDIR", help="write results here, keeping relative paths")
    where.add_argument("--in-place", action="store_true", help="replace files when the result is better")
    where.add_argument("--dry-run", action="store_true", help="do the work and report; change nothing")
    where.add_argument("--compare", action="store_true",
                       help="shadow mode: encode plain and precodec ways, report both, write only the report")
    p.add_argument("--target", default="ssimulacra2:80", help="quality target (default ssimulacra2:80)")
    p.add_argument("--format", default="auto", choices=["auto", "jpeg", "avif", "learned"],
                   help="output format (default auto: keep JPEG/AVIF, else JPEG); 'learned' is the opt-in learned "
                        "codec (.pcl, only precodec decodes it)")
    p.add_argument("--denoise", default="off", choices=["off", "auto", "clean"], help="learned denoising")
    p.add_argument("--backend", help="encoder backend (jpeg, mozjpeg, jpegli, avif)")
    p.add_argument("--strip-metadata", action="store_true", help="drop ICC, EXIF and XMP")
    p.add_argument("--min-saving", type=_percent, default=0.02, metavar="PCT",
                   help="smallest saving that replaces a file (default 2%%)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="local parallel workers (default: CPU count; 1 = in-process)")
    p.add_argument("--executor", default="local",
                   help="local (default), threads, processes, or dask://HOST:PORT (an existing Dask scheduler)")
    p.add_argument("--report", metavar="JSON", help="write one JSON record per file here")
    p.add_argument("--html", metavar="HTML", help="write a self-contained HTML report with plots here")
    p.add_argument("--calibrate", action="store_true",
                   help="correct the predictor over the run by its first encodes (opt-in; every result is still "
                        "measured)")
    p.add_argument("--no-marker", action="store_true", help="do not write the JPEG provenance COM segment")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def run(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, Progress, format_summary, run_batch
    from ..report import write_html, write_json

    opts = BatchOptions(
        target=args.target, format=args.format, denoise=args.denoise, out_dir=args.out_dir,
        in_place=args.in_place, min_saving=args.min_saving, dry_run=args.dry_run, compare=args.compare,
        backend=args.backend, strip_metadata=args.strip_metadata, mark=not args.no_marker,
        calibrate=args.calibrate,
    ).validate()
    progress = Progress(0, sys.stderr, quiet=args.quiet)
    result = run_batch(args.paths, opts, executor=args.executor, jobs=args.jobs, progress=progress)
    if args.report:
        write_json(args.report, result.files, result.summary, options=result.options)
    if args.html:
        write_html(args.html, result.files, result.summary, options=result.options,
                   title="precodec optimize" + (" (compare)" if args.compare else ""))
    print(format_summary(result.summary))
    for f in result.files:
        if f["status"] == "failed":
            print(f"failed: {f['source']}: {f['reason']}", file=sys.stderr)
    return 1 if result.failed else 0
