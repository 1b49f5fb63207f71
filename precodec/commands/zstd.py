"""``precodec zstd``: standard Zstd frames with trained dictionaries and budget-driven settings.

Usage::

    precodec zstd compress [PATH|-]... [-o OUT] [--level N | --budget SPEC] [--long] [--dict DICT]
        [--records lines|nul|len32|sep:X [--group N] [--dict-out DICT]] [--typed LAYOUT]
        [--report report.json] [--json] [-q] [-f]
    precodec zstd decompress [PATH|-]... [-o OUT] [--dict DICT] [--max-output 2GiB] [-f]
    precodec zstd train PATH... -o DICT [--records lines] [--sizes 4096,16384] [--levels 1,3,19]
    precodec zstd drift --dict DICT PATH... [--records lines] [--threshold 5%] [-o FRESH.dict]
    precodec zstd inspect PATH [--json]

Everything but ``--typed`` writes standard Zstd frames: ``zstd -d`` reads them
(``zstd -d -D DICT`` where a dictionary was used).  Reading ``-`` (the default)
is standard input and then output goes to standard output.  Memory stays
bounded on large inputs (1 MiB reads; record mode also keeps its training
sample, 8 MiB).  Writes are atomic; an existing file is replaced only with
``-f``; the input is never touched.

Exit status: 0 done, 1 some input failed (or ``drift`` over its threshold), 2 usage
or bad input (one line ``precodec: error: ...``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from typing import Any, BinaryIO, Iterator

from ..errors import OptionError, PrecodecError

EPILOG = """\
budgets: compress>=200MB/s, decompress>=1GB/s, time<=2x:level3, ratio>=4 (or min-ratio:4), max-ratio.
record mode trains a dictionary on the input (unless --dict) and writes it beside the output as OUT.dict;
decode with: zstd -d -D OUT.dict OUT   (or: precodec zstd decompress --dict OUT.dict OUT).
--typed LAYOUT (numpy dtype such as '<u4' or '<u4,<i8,<f8', or 'auto') is opt-in and writes a precodec
container that stock zstd CANNOT read.

exit status: 0 done, 1 some input failed (drift: over --threshold), 2 usage or bad input, 130 interrupted.
"""

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?i?b?)?\s*$", re.I)
_MULT = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
         "tb": 10**12, "ki": 1024, "kib": 1024, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
         "ti": 1 << 40, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """``"2GiB"`` -> 2147483648, ``"500MB"`` -> 500000000, ``"1024"`` -> 1024.

    Examples
    --------
    >>> parse_size("2GiB"), parse_size("10k")
    (2147483648, 10000)
    """
    m = _SIZE.match(str(text))
    if not m or m.group(2).lower() not in _MULT:
        raise OptionError(f"size {text!r} is not a byte count such as 1048576, 500MB or 2GiB")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [parse_size(x) if what == "sizes" else int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OptionError(f"--{what} {text!r} must be a comma-separated list of integers") from None


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("zstd", help="standard Zstd frames: trained dictionaries, budget-driven settings",
                       description=__doc__.split("\n\n")[0], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    zs = p.add_subparsers(dest="zstd_command", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--report", metavar="JSON", help="write the decision record(s) here")
        q.add_argument("--json", action="store_true", help="print the decision record(s) as JSON on stdout "
                                                            "(not when data goes to stdout)")
        q.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    c = zs.add_parser("compress", help="compress to standard Zstd frames", epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("paths", nargs="*", default=["-"], metavar="PATH", help="files, or - for standard input")
    c.add_argument("-o", "--output", help="output file (one input) or folder (several); default PATH.zst")
    how = c.add_mutually_exclusive_group()
    how.add_argument("-l", "--level", type=int, help="Zstd level (-7..22; default 3)")
    how.add_argument("--budget", help="let precodec choose for this budget (see below)")
    c.add_argument("--typed", metavar="LAYOUT",
                     help="OPT-IN typed mode for numeric columns: output is NOT readable by stock zstd")
    c.add_argument("--records", metavar="FRAMING", help="record mode: lines, jsonl, nul, len32 or sep:SEPARATOR")
    c.add_argument("--group", default="1", help="records per frame in record mode (default 1: each record "
                                                "decodable alone; auto: smallest group within 20%% of one stream)")
    c.add_argument("--dict", dest="dictionary", metavar="DICT", help="use this Zstd dictionary")
    c.add_argument("--dict-out", metavar="DICT", help="record mode: where to write the trained dictionary "
                                                      "(default OUT.dict)")
    c.add_argument("--long", action="store_true", help="long-distance matching, window log 27")
    c.add_argument("--window-log", type=int, default=0, help="log2 window (10..27; 0 = level default)")
    ck = c.add_mutually_exclusive_group()
    ck.add_argument("--checksum", dest="checksum", action="store_true", default=None,
                    help="content checksum in every frame (default: on, off in record mode where it costs 4 bytes "
                         "per record)")
    ck.add_argument("--no-checksum", dest="checksum", action="store_false", help="no content checksum")
    c.add_argument("-f", "--force", action="store_true", help="replace an existing output file")
    common(c)

    d = zs.add_parser("decompress", help="decompress Zstd frames (or a precodec typed container)")
    d.add_argument("paths", nargs="*", default=["-"], metavar="PATH")
    d.add_argument("-o", "--output", help="output file (one input) or folder; default PATH without .zst")
    d.add_argument("--dict", dest="dictionary", metavar="DICT", help="the dictionary the frames name")
    d.add_argument("--max-output", default="2GiB", help="decompression-bomb limit (default 2GiB)")
    d.add_argument("-f", "--force", action="store_true", help="replace an existing output file")
    common(d)

    t = zs.add_parser("train", help="train a dictionary on records (size and level chosen on a held-out split)")
    t.add_argument("paths", nargs="+", metavar="PATH")
    t.add_argument("-o", "--output", required=True, help="dictionary file to write")
    t.add_argument("--records", default="lines", metavar="FRAMING", help="record framing (default lines)")
    t.add_argument("--sizes", help="candidate dictionary sizes, e.g. 4KiB,16KiB,64KiB")
    t.add_argument("--levels", help="candidate levels, e.g. 1,3,9,19")
    t.add_argument("--holdout", type=float, default=0.2, help="held-out share (default 0.2)")
    t.add_argument("-f", "--force", action="store_true")
    common(t)

    r = zs.add_parser("drift", help="how much a dictionary lost against a freshly trained one on new records")
    r.add_argument("paths", nargs="+", metavar="PATH")
    r.add_argument("--dict", dest="dictionary", required=True, metavar="DICT")
    r.add_argument("--records", default="lines", metavar="FRAMING")
    r.add_argument("-l", "--level", type=int, default=3)
    r.add_argument("--threshold", default="5%", help="exit 1 when the loss is above this (default 5%%)")
    r.add_argument("-o", "--output", help="write the fresh dictionary here")
    r.add_argument("-f", "--force", action="store_true")
    common(r)

    i = zs.add_parser("inspect", help="describe Zstd frames, a typed container or a dictionary")
    i.add_argument("path", metavar="PATH")
    i.add_argument("--json", action="store_true")
    return p


# --------------------------------------------------------------------------- helpers


class _AtomicOut:
    """A temporary file beside ``path`` renamed over it on success (removed on failure)."""

    def __init__(self, path: str, force: bool) -> None:
        if os.path.exists(path) and not force:
            raise OptionError(f"{path} exists; use -f to replace it")
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=".precodec-", suffix=".tmp", dir=folder)
        self.f: BinaryIO = os.fdopen(fd, "wb")

    def __enter__(self) -> BinaryIO:
        return self.f

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        try:
            if et is None:
                self.f.flush()
                os.fsync(self.f.fileno())
            self.f.close()
            if et is None:
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def _jobs(paths: list[str], output: str | None, suffix: str, *, strip: bool = False) -> Iterator[tuple[str, str]]:
    """(input, output) pairs; ``-`` means standard input / output."""
    if len(paths) > 1 and "-" in paths:
        raise OptionError("standard input (-) cannot be combined with other inputs")
    if len(paths) > 1 and output and not os.path.isdir(output):
        raise OptionError(f"-o {output}: with several inputs -o must be an existing folder")
    for src in paths:
        if src == "-":
            yield src, output or "-"
            continue
        if strip:
            base = next((src[: -len(x)] for x in (suffix, ".pczt", ".zstd") if src.endswith(x) and len(src) > len(x)),
                        src + ".out")
        else:
            base = src + suffix
        if output and os.path.isdir(output):
            dst = os.path.join(output, os.path.basename(base))
        else:
            dst = output or base
        if dst != "-" and os.path.exists(src) and os.path.exists(dst) and os.path.samefile(src, dst):
            raise OptionError(f"{src}: output would overwrite the input")
        yield src, dst


def _open_in(src: str) -> tuple[BinaryIO, int]:
    if src == "-":
        return sys.stdin.buffer, -1
    try:
        f = open(src, "rb")
    except OSError as exc:
        raise OptionError(f"cannot read {src}: {exc.strerror}") from None
    return f, os.fstat(f.fileno()).st_size


class _Progress:
    def __init__(self, quiet: bool, name: str) -> None:
        self.quiet = quiet or not sys.stderr.isatty()
        self.name = name
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        rate = done / max(time.perf_counter() - self.t0, 1e-9) / 1e6
        pct = f"{100 * done / total:5.1f}% " if total and total > 0 else ""
        sys.stderr.write(f"\r{self.name[:40]:<40} {pct}{done >> 20} MiB {rate:.0f} MB/s")
        sys.stderr.flush()

    def end(self) -> None:
        if not self.quiet:
            sys.stderr.write("\r" + " " * 79 + "\r")


def _finish(args: argparse.Namespace, records: list[dict[str, Any]], to_stdout: bool) -> None:
    if args.report:
        from ..io import atomic_write

        atomic_write(args.report, json.dumps(records, indent=2, default=str).encode() + b"\n")
    if getattr(args, "json", False) and not to_stdout:
        json.dump(records if len(records) != 1 else records[0], sys.stdout, indent=2, default=str)
        print()


def _line(i: int, n: int, rec: dict[str, Any]) -> str:
    if rec.get("status") == "failed":
        return f"[{i}/{n}] failed   {rec['source']}: {rec['reason']}"
    extra = ""
    if rec.get("mode") == "budget":
        met = {True: "met", False: "NOT met", None: "not checked"}[rec.get("budget_met")]
        extra = (f"; budget {rec['budget']} {met} ({rec.get('speed_MBps', 0):.0f} MB/s CPU), "
                 f"levels {rec['levels_used']} in {rec.get('frames', 1)} frame(s)")
    elif rec.get("mode") == "records":
        extra = f"; {rec['records']} records, level {rec['level']}, dict id {rec['dict_id']}"
    elif rec.get("mode") == "level":
        extra = f"; level {rec['params']['level']}"
    elif rec.get("mode") == "typed":
        extra = "; TYPED container: stock zstd cannot read it"
    return (f"[{i}/{n}] written  {rec['source']} -> {rec['output']}: {rec['read']} -> {rec['written']} bytes "
            f"(ratio {rec.get('ratio', 0):.2f}){extra}")


# --------------------------------------------------------------------------- actions


def _compress_one(args: argparse.Namespace, src: str, dst: str) -> dict[str, Any]:
    from .. import zstd as pz

    fin, size = _open_in(src)
    dictionary = pz.load_dictionary(args.dictionary) if args.dictionary else None
    prog = _Progress(args.quiet, src)
    try:
        out_ctx: Any = _AtomicOut(dst, args.force) if dst != "-" else None
        fout = out_ctx.__enter__() if out_ctx else sys.stdout.buffer
        ok = False
        try:
            td = None
            if args.typed:
                data = fin.read()
                t0 = time.perf_counter()
                blob = pz.compress_typed(data, layout=args.typed, level="auto" if args.level is None else args.level)
                dt = time.perf_counter() - t0
                fout.write(blob)
                rec: dict[str, Any] = {"mode": "typed", "layout": args.typed, "read": len(data),
                                       "written": len(blob), "ratio": len(data) / max(len(blob), 1),
                                       "seconds": dt, "stock_zstd_readable": False,
                                       "note": "precodec typed container: stock zstd cannot read it"}
                rec["columns"] = [{k: c[k] for k in ("name", "dtype", "transform", "param", "csize")}
                                  for c in pz.inspect(blob)["columns"]]
            elif args.records:
                rec, td = pz.records_stream(fin, fout, framing=args.records, dictionary=dictionary,
                                            level=args.level, group=args.group, checksum=bool(args.checksum),
                                            progress=prog)
            else:
                rec = pz.compress_stream(fin, fout, level=args.level, budget=args.budget, dictionary=dictionary,
                                         long_distance=args.long, window_log=args.window_log,
                                         checksum=args.checksum is not False, size=size, progress=prog)
            ok = True
        finally:
            prog.end()
            if out_ctx:
                out_ctx.__exit__(None if ok else RuntimeError, None, None)
        if td is not None:
            dict_path = args.dict_out or (dst + ".dict" if dst != "-" else None)
            if dict_path is None:
                raise OptionError("record mode on standard output needs --dict-out to keep the trained dictionary")
            td.save(dict_path)
            rec["dictionary_file"] = dict_path
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()
    rec.update(source=src, output=dst, status="written")
    return rec


def _decompress_one(args: argparse.Namespace, src: str, dst: str) -> dict[str, Any]:
    from .. import zstd as pz

    fin, _ = _open_in(src)
    dictionary = pz.load_dictionary(args.dictionary) if args.dictionary else None
    try:
        out_ctx = _AtomicOut(dst, args.force) if dst != "-" else None
        fout = out_ctx.__enter__() if out_ctx else sys.stdout.buffer
        ok = False
        try:
            t0 = time.perf_counter()
            rec = pz.decompress_stream(fin, fout, dictionary=dictionary, max_output_size=parse_size(args.max_output))
            rec["seconds"] = time.perf_counter() - t0
            ok = True
        finally:
            if out_ctx:
                out_ctx.__exit__(None if ok else RuntimeError, None, None)
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()
    rec.update(source=src, output=dst, status="written", ratio=rec["written"] / max(rec["read"], 1))
    return rec


def _run_many(args: argparse.Namespace, fn: Any, suffix: str, strip: bool) -> int:
    jobs = list(_jobs(args.paths, args.output, suffix, strip=strip))
    records, failed = [], 0
    to_stdout = any(d == "-" for _, d in jobs)
    for i, (src, dst) in enumerate(jobs, 1):
        try:
            rec = fn(args, src, dst)
        except PrecodecError as exc:
            if len(jobs) == 1:
                raise
            rec = {"source": src, "output": dst, "status": "failed", "reason": str(exc)}
            failed += 1
        records.append(rec)
        if not args.quiet:
            print(_line(i, len(jobs), rec), file=sys.stderr)
    _finish(args, records, to_stdout)
    return 1 if failed else 0


def _read_records(paths: list[str], framing: str) -> list[bytes]:
    from .. import zstd as pz

    recs: list[bytes] = []
    for path in paths:
        f, _ = _open_in(path)
        try:
            recs.extend(pz.iter_records(f, framing))
        finally:
            if f is not sys.stdin.buffer:
                f.close()
    return recs


def _train(args: argparse.Namespace) -> int:
    from .. import zstd as pz
    from ..tuners.zstd.records import DEFAULT_LEVELS, DEFAULT_SIZES

    if os.path.exists(args.output) and not args.force:
        raise OptionError(f"{args.output} exists; use -f to replace it")
    recs = _read_records(args.paths, args.records)
    td = pz.train_dictionary(recs, sizes=_int_list(args.sizes, "sizes") if args.sizes else DEFAULT_SIZES,
                             levels=_int_list(args.levels, "levels") if args.levels else DEFAULT_LEVELS,
                             holdout=args.holdout)
    td.save(args.output)
    rec = {**td.summary(), "output": args.output, "sources": args.paths}
    h = td.heldout
    if not args.quiet:
        print(f"trained {args.output}: {td.size} bytes, dict id {td.dict_id}, level {td.level}; held-out "
              f"ratio {h['ratio']:.2f} per record (no dictionary {h['nodict_ratio']:.2f}, one stream "
              f"{h['one_stream_ratio']:.2f}); {td.records} records, {td.train_seconds:.2f} s", file=sys.stderr)
    _finish(args, [rec], False)
    return 0


def _drift(args: argparse.Namespace) -> int:
    from .. import zstd as pz

    thr_s = str(args.threshold).strip()
    try:
        thr = float(thr_s[:-1]) / 100 if thr_s.endswith("%") else float(thr_s)
    except ValueError:
        raise OptionError(f"--threshold {args.threshold!r} must be like 5% or 0.05") from None
    d = pz.load_dictionary(args.dictionary)
    recs = _read_records(args.paths, args.records)
    rep = pz.drift_report(d, recs, level=args.level)
    rec = {"dictionary": args.dictionary, "dict_id": pz.dictionary_id(d),
           **rep.summary(), "threshold": thr, "retrain": rep.loss > thr}
    if args.output and rep.fresh is not None:
        if os.path.exists(args.output) and not args.force:
            raise OptionError(f"{args.output} exists; use -f to replace it")
        rep.fresh.save(args.output)
        rec["fresh_dictionary_file"] = args.output
    if not args.quiet:
        print(f"{args.dictionary}: ratio {rep.current_ratio:.2f} on the new records' held-out tail; a fresh "
              f"dictionary gets {rep.fresh_ratio:.2f} (no dictionary {rep.nodict_ratio:.2f}): output "
              f"{rep.loss:+.1%} larger than fresh -> {'RETRAIN' if rep.loss > thr else 'keep'} "
              f"(threshold {thr:.0%})", file=sys.stderr)
    _finish(args, [rec], False)
    return 1 if rep.loss > thr else 0


def _inspect(args: argparse.Namespace) -> int:
    from .. import zstd as pz

    f, _ = _open_in(args.path)
    try:
        data = f.read()
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    info = pz.inspect(data)
    if args.json:
        json.dump(info, sys.stdout, indent=2, default=str)
        print()
        return 0
    for k, v in info.items():
        if k == "columns":
            print("columns:")
            for c in v:
                print(f"  {c['name']:<16} {c['dtype']:<6} {c['count']:>10} values  transform {c['transform']}"
                      f"{c['param'] if c['transform'] == 'decimal' else ''}  {c['csize']} bytes")
        else:
            print(f"{k}: {v}")
    return 0


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "zstd_command", None)
    if cmd == "compress":
        if args.group != "auto":
            try:
                args.group = int(args.group)
            except ValueError:
                raise OptionError(f"--group {args.group!r} must be a positive integer or auto") from None
            if args.group < 1:
                raise OptionError(f"--group {args.group!r} must be >= 1")
        if args.typed and (args.records or args.dictionary or args.long or args.budget):
            raise OptionError("--typed cannot be combined with --records, --dict, --long or --budget")
        if args.budget and (args.records or args.dictionary):
            raise OptionError("--budget cannot be combined with --records or --dict")
        if args.typed and not args.quiet:
            print("precodec: note: --typed writes a precodec container that stock zstd cannot read",
                  file=sys.stderr)
        return _run_many(args, _compress_one, ".pczt" if args.typed else ".zst", False)
    if cmd == "decompress":
        return _run_many(args, _decompress_one, ".zst", True)
    if cmd == "train":
        return _train(args)
    if cmd == "drift":
        return _drift(args)
    if cmd == "inspect":
        return _inspect(args)
    raise OptionError("precodec zstd needs an action: compress, decompress, train, drift or inspect")
