"""``precodec gate``: the CI quality gate.

Usage::

    precodec gate PATH... [--target ssimulacra2:80] [--max-saving 5%]
        [--source DIR] [--baseline results.json [--update-baseline]]
        [--json out.json] [--junit out.xml] [--markdown out.md] [--github]

Checks: without ``--source``/``--baseline``, or with ``--max-saving`` given,
every JPEG/AVIF that precodec could make more than ``--max-saving`` smaller
at the target fails.  ``--source DIR`` fails derived images below the target
against their sources.  ``--baseline FILE`` reruns the corpus and fails on
regressions beyond ``--bytes-tolerance`` / ``--quality-tolerance``.

Exit status: 0 passed, 1 failed, 2 bad usage.  GitHub annotations are
printed when ``--github`` is given or ``GITHUB_ACTIONS=true``; the Markdown
summary is appended to ``$GITHUB_STEP_SUMMARY`` when that is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .optimize import _percent

EPILOG = "exit status: 0 passed, 1 failed (each failure named), 2 bad usage."


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("gate", help="CI quality gate: unoptimized assets, quality against sources, regressions",
                       description="Fail a build on unoptimized images, quality regressions or byte regressions.",
                       epilog=EPILOG)
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    p.add_argument("--target", default=None, help="quality target (default ssimulacra2:80, or the baseline's)")
    p.add_argument("--max-saving", type=_percent, default=None, metavar="PCT",
                   help="fail when an image could be more than PCT smaller at the target (default 5%%)")
    p.add_argument("--format", default="auto", choices=["auto", "jpeg", "avif"],
                   help="format to check savings in (auto: each file's own; other files ignored)")
    p.add_argument("--backend", help="encoder backend")
    p.add_argument("--source", metavar="DIR", help="check derived images against their sources in DIR")
    p.add_argument("--baseline", metavar="JSON", help="compare a corpus run with this stored result")
    p.add_argument("--update-baseline", action="store_true", help="write the current run to --baseline and pass")
    p.add_argument("--bytes-tolerance", type=_percent, default=0.02, metavar="PCT",
                   help="allowed growth in bytes against the baseline (default 2%%)")
    p.add_argument("--quality-tolerance", type=float, default=1.0, metavar="POINTS",
                   help="allowed drop in the target metric against the baseline (default 1.0)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel workers (default 1)")
    p.add_argument("--executor", default="local", help="local, threads, processes or dask://HOST:PORT")
    p.add_argument("--json", metavar="FILE", help="write the findings as JSON")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown summary")
    p.add_argument("--github", action="store_true", help="print GitHub annotations (default when GITHUB_ACTIONS=true)")
    p.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    return p


def run(args: argparse.Namespace) -> int:
    from .. import gate
    from ..errors import OptionError
    from ..io import atomic_write
    from ..targets import Target

    findings: list[gate.Finding] = []
    extra: dict[str, Any] = {}
    if args.update_baseline and not args.baseline:
        raise OptionError("--update-baseline needs --baseline FILE")
    base_doc = None
    if args.baseline and not args.update_baseline:
        try:
            with open(args.baseline, encoding="utf-8") as f:
                base_doc = json.load(f)
        except OSError as exc:
            raise OptionError(f"--baseline {args.baseline!r}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise OptionError(f"--baseline {args.baseline!r} is not JSON: {exc}") from None
    target = str(Target.parse(args.target or (base_doc or {}).get("target") or "ssimulacra2:80"))
    extra["target"] = target
    fmt = args.format
    if args.update_baseline:
        doc = gate.baseline_document(args.paths, target=target, format=fmt, backend=args.backend, jobs=args.jobs,
                                     executor=args.executor)
        atomic_write(args.baseline, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
        print(f"wrote baseline {args.baseline}: {doc['totals']['files']} files, {doc['totals']['bytes']} bytes")
        return 0
    if base_doc is not None:
        found, now = gate.check_baseline(args.paths, base_doc, target=target,
                                         format=None if fmt == "auto" else fmt, backend=args.backend,
                                         bytes_tolerance=args.bytes_tolerance,
                                         quality_tolerance=args.quality_tolerance, jobs=args.jobs,
                                         executor=args.executor)
        findings += found
        extra["current"] = now
    if args.source:
        findings += gate.check_sources(args.paths, args.source, target=target)
    if args.max_saving is not None or not (args.source or args.baseline):
        max_saving = 0.05 if args.max_saving is None else args.max_saving
        extra["max_saving"] = max_saving
        findings += gate.check_savings(args.paths, target=target, max_saving=max_saving, format=fmt,
                                       backend=args.backend, jobs=args.jobs, executor=args.executor)

    failed = [f for f in findings if not f.ok]
    for f in findings:
        if not f.ok:
            print(f"FAIL {gate._rel(f.path)} [{f.check}]: {f.message}")
        elif not args.quiet:
            print(f"ok   {gate._rel(f.path)} [{f.check}]: {f.message}")
    print(f"precodec gate: {'FAILED' if failed else 'passed'}: {len(findings)} checks, {len(failed)} failed")
    if args.json:
        atomic_write(args.json, gate.to_json(findings, extra=extra).encode())
    if args.junit:
        atomic_write(args.junit, gate.to_junit(findings).encode())
    md = gate.to_markdown(findings)
    if args.markdown:
        atomic_write(args.markdown, md.encode())
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as f:
            f.write(md + "\n")
    if args.github or os.environ.get("GITHUB_ACTIONS") == "true":
        sys.stdout.write(gate.github_annotations(findings))
    return 1 if failed else 0
