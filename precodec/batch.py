"""The batch engine behind ``precodec optimize``: walk, optimise in parallel, write safely.

One coordinator process walks the inputs, reads each file, hands the bytes to
an executor (inline, a local process or thread pool, or a Dask cluster
through its ``concurrent.futures`` executor) and is the only one that writes:
outputs, the provenance manifest and the reports.  Workers are pure: bytes in,
bytes and a decision record out, so the same work runs anywhere.

Safety
------
* Every write is atomic (:func:`precodec.io.atomic_write`: temporary file in
  the same folder, fsync, rename).  A crash or kill at any moment leaves each
  file either the original or a finished result.
* ``in_place`` replaces a file only when the result meets the target, is
  smaller by ``min_saving`` and decodes (it is decoded once to prove it), and
  only when the format stays the same (the file name does not change).
* A file that cannot be read or encoded is reported and the batch goes on.

Provenance (never recompress precodec's own output)
---------------------------------------------------
Two marks, both checked before any work:

1. A manifest, ``.precodec-manifest.jsonl`` at the root of each input folder
   (in place) or of the output folder (``-o``): one JSON line per decision,
   appended and fsynced by the coordinator.  The SHA-256 of every output is
   written *before* the output is renamed into place, so a kill between the
   two can never leave an unmarked output.  Files whose content is a recorded
   output are skipped ("precodec output"); files already checked with the
   same options and kept are skipped ("already checked"); ``-o`` outputs that
   exist with their recorded content are skipped ("done").  That is the resume.
2. JPEG outputs carry a COM segment ``precodec <version> <target>`` (about 40
   bytes), which survives copies, commits and renames where a manifest does
   not; JPEGs carrying it are skipped.  AVIF outputs rely on the manifest.

Stale temporary files (``.precodec-*.tmp``) left by a killed run in the
folders of an in-place batch are removed at the start of the next one, so do
not run two in-place batches on the same folder at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import os
import struct
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

from .errors import MissingDependencyError, OptionError, PrecodecError

__all__ = [
    "BatchOptions",
    "BatchResult",
    "run_batch",
    "discover",
    "work",
    "make_executor",
    "has_precodec_marker",
    "add_jpeg_marker",
    "Manifest",
    "IMAGE_EXTENSIONS",
    "MANIFEST_NAME",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".avif", ".webp", ".tif", ".tiff", ".bmp")
MANIFEST_NAME = ".precodec-manifest.jsonl"
MARKER_PREFIX = b"precodec "
_TMP_PREFIX = ".precodec-"
_FORMAT_OF = {"JPEG": "jpeg", "MPO": "jpeg", "AVIF": "avif"}
_EXT = {"jpeg": ".jpg", "avif": ".avif", "learned": ".pcl"}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class BatchOptions:
    """What a batch does.  Exactly one of ``out_dir``, ``in_place``, ``dry_run``, ``compare`` writes images.

    Attributes
    ----------
    target : str
        Quality target (``"ssimulacra2:80"``).
    format : {"auto", "jpeg", "avif"}
        Output format; ``auto`` keeps JPEG and AVIF, and picks JPEG (AVIF for
        images with transparency) for other inputs.
    denoise : {"off", "auto", "clean"}
    out_dir : str or None
        Write results here, keeping paths relative to each input folder.
    in_place : bool
        Replace files (same name and format) when the result is better.
    min_saving : float
        Fraction (0.02 = 2%) by which a result must be smaller to replace a
        file in place, or to be preferred over copying a same-format original.
    dry_run : bool
        Do the work, report, write no image and no manifest.
    compare : bool
        Shadow mode: encode both the plain way (the encoder's defaults) and
        the precodec way, report both, write nothing but the report.
    backend : str or None
    strip_metadata : bool
    mark : bool
        Write the JPEG provenance COM segment.
    calibrate : bool
        Opt-in: correct the predictor over the run (:class:`precodec.tuners.search.Calibration`):
        each worker starts an image's search from the run's mean first-encode error so far.
        Every result is still measured against the target.  Off by default: on Kodak it saved bytes
        at every AVIF target but cost JPEG bytes at target 90 (see the CHANGELOG).
    """

    target: str = "ssimulacra2:80"
    format: str = "auto"
    denoise: str = "off"
    out_dir: str | None = None
    in_place: bool = False
    min_saving: float = 0.02
    dry_run: bool = False
    compare: bool = False
    backend: str | None = None
    strip_metadata: bool = False
    mark: bool = True
    calibrate: bool = False

    def validate(self) -> "BatchOptions":
        from .targets import Target

        Target.parse(self.target)
        if self.format not in ("auto", "jpeg", "avif", "learned"):
            raise OptionError(f"format={self.format!r} is not one of ['auto', 'jpeg', 'avif', 'learned']")
        if self.denoise not in ("off", "auto", "clean"):
            raise OptionError(f"denoise={self.denoise!r} is not one of ['off', 'auto', 'clean']")
        if not (0.0 <= self.min_saving < 1.0):
            raise OptionError(f"min_saving={self.min_saving!r} must be a fraction in [0, 1)")
        writes = (self.out_dir is not None) + bool(self.in_place)
        if writes > 1:
            raise OptionError("out_dir and in_place are mutually exclusive")
        if writes == 0 and not (self.dry_run or self.compare):
            raise OptionError("say where results go: out_dir (-o DIR) or in_place (--in-place), or use dry_run/compare")
        return self

    @property
    def writes(self) -> bool:
        return not (self.dry_run or self.compare)

    def key(self) -> str:
        """Options that change a decision (for resume)."""
        return json.dumps({"target": self.target, "format": self.format, "denoise": self.denoise,
                           "backend": self.backend, "min_saving": self.min_saving,
                           "strip_metadata": self.strip_metadata}, sort_keys=True)


# --------------------------------------------------------------------------- provenance


def add_jpeg_marker(data: bytes, text: str) -> bytes:
    """Insert a COM segment ``precodec ...`` after SOI (and JFIF APP0).

    Examples
    --------
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> b = io.BytesIO(); Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(b, "JPEG")
    >>> has_precodec_marker(add_jpeg_marker(b.getvalue(), "0.1 ssimulacra2:80"))
    True
    """
    if data[:2] != b"\xff\xd8":
        return data
    payload = MARKER_PREFIX + text.encode("ascii", "replace")
    pos = 2
    if data[2:4] == b"\xff\xe0":
        pos = 4 + struct.unpack(">H", data[4:6])[0]
    seg = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return data[:pos] + seg + data[pos:]


def has_precodec_marker(data: bytes) -> bool:
    """True when ``data`` is a JPEG with precodec's COM segment before the first scan."""
    if data[:2] != b"\xff\xd8":
        return False
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: headers are over
            return False
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xFE and data[pos + 4 : pos + 4 + len(MARKER_PREFIX)] == MARKER_PREFIX:
            return True
        pos += 2 + length
    return False


class Manifest:
    """The append-only provenance log of one folder (see the module docstring)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, MANIFEST_NAME)
        self.outputs: set[str] = set()
        self.checked: dict[str, set[str]] = {}
        self.done: dict[str, dict[str, Any]] = {}
        if os.path.exists(self.path):
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:  # a torn last line after a kill
                        continue
                    self._index(e)

    def _index(self, e: dict[str, Any]) -> None:
        if e.get("output_sha256"):
            self.outputs.add(e["output_sha256"])
        if e.get("kind") == "kept" and e.get("source_sha256"):
            self.checked.setdefault(e["source_sha256"], set()).add(e.get("options", ""))
        if e.get("kind") == "output" and e.get("output"):
            self.done[e["output"]] = e

    def append(self, entry: dict[str, Any]) -> None:
        os.makedirs(self.folder, exist_ok=True)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._index(entry)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- discovery


def discover(paths: Sequence[str]) -> list[tuple[str, str]]:
    """Return ``(root, relative path)`` for every image under ``paths`` (folders are walked, sorted).

    Files named on the command line are taken whatever their extension;
    inside folders, only :data:`IMAGE_EXTENSIONS`.  Hidden folders, precodec's
    temporary files and its manifest are skipped.

    Examples
    --------
    >>> discover([])
    []
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for p in paths:
        if os.path.isdir(p):
            root = os.path.abspath(p)
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith(_TMP_PREFIX) or name == MANIFEST_NAME:
                        continue
                    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                        continue
                    full = os.path.join(dirpath, name)
                    if full not in seen:
                        seen.add(full)
                        out.append((root, os.path.relpath(full, root)))
        elif os.path.exists(p):
            full = os.path.abspath(p)
            if full not in seen:
                seen.add(full)
                out.append((os.path.dirname(full), os.path.basename(full)))
        else:
            raise OptionError(f"input path {p!r} does not exist")
    return out


def _clean_stale_temps(folders: Iterable[str]) -> int:
    n = 0
    for d in set(folders):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name.startswith(_TMP_PREFIX) and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(d, name))
                    n += 1
                except OSError:
                    pass
    return n


# --------------------------------------------------------------------------- the worker


def _verify(data: bytes, size: tuple[int, int]) -> None:
    from PIL import Image

    from .errors import EncoderError

    try:
        if data[:4] == b"\x89PCL":  # the opt-in learned codec: only precodec decodes it
            from . import learned

            got = learned.decode(data).size
        else:
            if data[4:8] == b"ftyp":
                from .plugins.avif import ensure_avif

                ensure_avif()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                got = im.size
    except Exception as exc:
        raise EncoderError(f"result does not decode: {exc}") from None
    if got not in (size, size[::-1]):
        raise EncoderError(f"result decodes to {got}, expected {size}")


#: per-process calibrations of the runs this process has worked for (run id -> Calibration); the oldest are
#: dropped past :data:`_MAX_RUNS` (a long-lived Dask worker serves many runs)
_CALIBRATIONS: dict[str, Any] = {}
_MAX_RUNS = 8
_CAL_LOCK = threading.Lock()


def _calibration(run: str | None) -> Any:
    """This process's :class:`~precodec.tuners.search.Calibration` for run ``run`` (None: no calibration)."""
    if not run:
        return None
    from .tuners.search import Calibration

    with _CAL_LOCK:
        cal = _CALIBRATIONS.get(run)
        if cal is None:
            while len(_CALIBRATIONS) >= _MAX_RUNS:
                del _CALIBRATIONS[next(iter(_CALIBRATIONS))]
            cal = _CALIBRATIONS[run] = Calibration()
        return cal


def work(task: dict[str, Any]) -> dict[str, Any]:
    """Optimise one image given as bytes; return bytes and the decision record (never raises).

    This is what executors run: a pure function of its argument, importable
    by name, so it works in threads, processes and on Dask workers.
    """
    t0 = time.perf_counter()
    out: dict[str, Any] = {"ok": False}
    try:
        from . import __version__
        from .intake import load_image
        from .pipeline import optimize

        data = task["data"]
        intake = load_image(data)
        res = optimize(
            data, format=task["format"], target=task["target"], backend=task.get("backend"),
            denoise=task.get("denoise", "off"), strip_metadata=task.get("strip_metadata", False),
            source=task.get("source"), calibration=_calibration(task.get("calibrate")),
        )
        result = res.data
        if res.format == "jpeg" and task.get("mark", True):
            result = add_jpeg_marker(result, f"{__version__} {task['target']}")
        _verify(result, intake.size)
        out.update(ok=True, data=result, format=res.format, extension=res.extension, params=res.params,
                   quality=res.quality, record=res.record.to_dict())
        if task.get("compare"):
            out["plain"] = _plain_encode(intake, res.format, task)
    except PrecodecError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # one bad file must not stop the batch
        out["error"] = f"unexpected {type(exc).__name__}: {exc}"
    out["seconds"] = time.perf_counter() - t0
    return out


def _plain_encode(intake: Any, fmt: str, task: dict[str, Any]) -> dict[str, Any]:
    """The plain way: the encoder's default settings (what ``Image.save`` does), measured the same way."""
    import numpy as np

    from .metrics import score
    from .plugins import get_codec
    from .targets import Target

    codec = get_codec(task.get("backend") or fmt)
    im = intake.image
    if im.mode in ("RGBA", "LA") and not getattr(codec, "alpha", False):
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    params = codec.space.defaults()
    data = codec.encode(im, params, metadata=None if task.get("strip_metadata") else intake.metadata)
    ref = intake.rgb()
    dec = np.asarray(codec.decode(data).convert("RGB" if ref.ndim == 3 else "L"))
    tgt = Target.parse(task["target"])
    return {"bytes": len(data), "params": params, "quality": {tgt.metric: score(tgt.metric, ref, dec)}}


# --------------------------------------------------------------------------- executors


class _Inline:
    """A synchronous executor (``--jobs 1``): simplest, and what a debugger wants."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        f: cf.Future = cf.Future()
        try:
            f.set_result(fn(*args))
        except BaseException as exc:  # pragma: no cover - work() never raises
            f.set_exception(exc)
        return f

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def make_executor(spec: str | None, jobs: int) -> tuple[Any, int, Callable[[], None]]:
    """Return ``(executor, parallelism, close)`` for ``--executor`` / ``--jobs``.

    ``spec``: None or ``"local"`` (processes, or inline for ``jobs=1``),
    ``"threads"``, ``"processes"``, or ``dask://HOST:PORT`` (also
    ``tcp://HOST:PORT``): an existing Dask scheduler, used through
    ``distributed.Client.get_executor()``, a ``concurrent.futures`` executor.
    """
    if jobs < 1:
        raise OptionError(f"jobs={jobs!r} must be at least 1")
    if spec and (spec.startswith("dask://") or spec.startswith("tcp://")):
        try:
            from distributed import Client
        except ImportError:
            raise MissingDependencyError("--executor dask://... needs Dask: pip install precodec[dask]") from None
        addr = "tcp://" + spec.split("://", 1)[1]
        try:
            client = Client(addr, timeout=20)
        except OSError as exc:
            raise OptionError(f"cannot reach the Dask scheduler at {addr}: {exc}") from None
        n = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()))
        ex = client.get_executor()

        def close() -> None:
            ex.shutdown(wait=False)
            client.close()

        return ex, n, close
    if spec in (None, "", "local", "processes"):
        if jobs == 1 and spec != "processes":
            return _Inline(), 1, lambda: None
        ex = cf.ProcessPoolExecutor(max_workers=jobs)
        return ex, jobs, lambda: ex.shutdown(wait=True, cancel_futures=True)
    if spec == "threads":
        ex = cf.ThreadPoolExecutor(max_workers=jobs)
        return ex, jobs, lambda: ex.shutdown(wait=True, cancel_futures=True)
    raise OptionError(f"executor={spec!r}: use local, processes, threads or dask://HOST:PORT")


# --------------------------------------------------------------------------- progress


class Progress:
    """A progress bar on a terminal, one plain line per file otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, *, tty: bool | None = None, quiet: bool = False):
        self.total, self.done = total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def update(self, rec: dict[str, Any]) -> None:
        self.done += 1
        if self.quiet:
            return
        status = rec["status"]
        msg = rec.get("reason", "")
        if rec.get("bytes_after") is not None and rec.get("bytes_before") and rec.get("saving") is not None:
            msg = f"{rec['bytes_before']} -> {rec['bytes_after']} bytes (saved {rec['saving']:.1%}); {msg}"
        if self.tty:
            width = 28
            fill = int(width * self.done / max(1, self.total))
            rate = self.done / max(1e-9, time.perf_counter() - self.t0)
            line = (f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                    f"{rate:.1f}/s  {os.path.basename(rec['source'])[:30]:<30}")
            self.stream.write(line)
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {status:<8} {rec['source']}: {msg}\n")
        self.stream.flush()


# --------------------------------------------------------------------------- the batch


@dataclass
class BatchResult:
    """Per-file records and the summary of a batch.

    Attributes
    ----------
    files : list of dict
        One record per file: source, output, status (``written``, ``kept``,
        ``skipped``, ``failed``, ``dry-run``, ``compared``), format, params,
        bytes_before, bytes_after, saving, target, quality, target_met,
        encodes, preprocessing, reason (and ``plain`` in compare mode).
    summary : dict
        files, bytes_before, bytes_after, saving, target_misses, skipped, failed...
    """

    files: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return int(self.summary.get("failed", 0))

    def to_dict(self) -> dict[str, Any]:
        from ._version import __version__

        return {"precodec": __version__, "options": self.options, "summary": self.summary,
                "files": self.files, "interrupted": self.interrupted}


def _resolve_format(requested: str, src_fmt: str | None, has_alpha: bool) -> str:
    if requested != "auto":
        return requested
    if src_fmt in ("jpeg", "avif"):
        return src_fmt
    return "avif" if has_alpha else "jpeg"


def _peek(data: bytes) -> tuple[str | None, bool, str, tuple[int, int]]:
    """(precodec format of the container or None, has alpha, PIL format name, (width, height)) without decoding
    pixels."""
    from PIL import Image

    if data[4:12] in (b"ftypavif", b"ftypavis"):
        from .plugins.avif import ensure_avif

        ensure_avif()
    with Image.open(io.BytesIO(data)) as im:
        alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        return _FORMAT_OF.get(im.format or ""), alpha, im.format or "?", im.size


def run_batch(paths: Sequence[str], options: BatchOptions, *, executor: str | None = None, jobs: int = 1,
              progress: Progress | None = None, quiet: bool = False) -> BatchResult:
    """Optimise every image under ``paths``; see the module docstring for the guarantees.

    Parameters
    ----------
    paths : sequence of str
        Files and folders (walked recursively).
    options : BatchOptions
    executor : str, optional
        ``local`` (default), ``threads``, ``processes`` or ``dask://HOST:PORT``.
    jobs : int
        Local parallelism.
    progress : Progress, optional
        Where progress goes (default: stderr, a bar on a terminal).

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp()
    >>> y, x = np.mgrid[0:64, 0:64]
    >>> Image.fromarray(np.dstack([x * 4, y * 4, x + y]).astype(np.uint8)).save(d + "/a.png")
    >>> r = run_batch([d], BatchOptions(target="psnr:30", dry_run=True), quiet=True)
    >>> r.summary["files"], r.files[0]["status"]
    (1, 'dry-run')
    """
    from ._version import __version__

    options.validate()
    run_id = uuid.uuid4().hex  # the run's calibration (BatchOptions.calibrate), one per worker process
    found = discover(paths)
    result = BatchResult(options=asdict(options))
    files: list[dict[str, Any]] = []
    prog = progress or Progress(len(found), quiet=quiet)
    prog.total = len(found)
    okey = options.key()
    from .metrics import too_small
    from .targets import Target

    metric_name = Target.parse(options.target).metric
    manifests: dict[str, Manifest] = {}

    def manifest_for(root: str) -> Manifest:
        folder = os.path.abspath(options.out_dir) if options.out_dir else root
        if folder not in manifests:
            manifests[folder] = Manifest(folder)
        return manifests[folder]

    if options.in_place and options.writes:
        _clean_stale_temps(os.path.dirname(os.path.join(r, rel)) for r, rel in found)

    def base_record(root: str, rel: str) -> dict[str, Any]:
        return {"source": os.path.join(root, rel), "output": None, "status": "", "format": None, "params": {},
                "bytes_before": None, "bytes_after": None, "saving": None, "target": options.target,
                "quality": {}, "target_met": None, "encodes": 0, "preprocessing": {}, "reason": ""}

    def finish(rec: dict[str, Any]) -> None:
        files.append(rec)
        prog.update(rec)

    # ---- plan: read, check provenance, make tasks
    def tasks() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        dests: dict[str, str] = {}
        for root, rel in found:
            rec = base_record(root, rel)
            src = rec["source"]
            try:
                with open(src, "rb") as f:
                    data = f.read()
            except OSError as exc:
                rec.update(status="failed", reason=f"cannot read: {exc.strerror or exc}")
                finish(rec)
                continue
            rec["bytes_before"] = len(data)
            sha = _sha(data)
            man = manifest_for(root)
            if sha in man.outputs or has_precodec_marker(data):
                rec.update(status="skipped", reason="precodec output (provenance): not recompressed")
                finish(rec)
                continue
            if options.in_place and okey in man.checked.get(sha, ()):
                rec.update(status="skipped", reason="already checked with these options; kept")
                finish(rec)
                continue
            try:
                src_fmt, alpha, pil_fmt, (w, h) = _peek(data)
            except Exception as exc:
                why = "not a recognised image file" if "cannot identify" in str(exc) else str(exc)
                rec.update(status="failed", reason=f"not a readable image: {why}")
                finish(rec)
                continue
            small = too_small(metric_name, w, h)
            if small:
                # spacer GIFs and tracking pixels are not bad input: their quality cannot be measured, so they are
                # left as they are (reported as skipped, not failed)
                rec.update(status="skipped", reason=f"{small}: left as is")
                finish(rec)
                continue
            fmt = _resolve_format(options.format, src_fmt, alpha)
            if options.in_place and fmt != src_fmt:
                rec.update(status="skipped",
                           reason=f"in-place keeps names and formats: {pil_fmt} cannot become {fmt} (use -o DIR)")
                finish(rec)
                continue
            rec["format"] = fmt
            if options.out_dir:
                stem, ext = os.path.splitext(rel)
                out_rel = rel if src_fmt == fmt else stem + _EXT[fmt]
                dest = os.path.join(os.path.abspath(options.out_dir), out_rel)
                if dest in dests:
                    rec.update(status="failed", reason=f"same output as {dests[dest]}: {dest}")
                    finish(rec)
                    continue
                dests[dest] = src
                prev = man.done.get(out_rel)
                if (prev and prev.get("source_sha256") == sha and prev.get("options") == okey
                        and os.path.exists(dest) and options.writes):
                    with open(dest, "rb") as f:
                        if _sha(f.read()) == prev.get("output_sha256"):
                            rec.update(status="skipped", output=dest, reason="done in an earlier run")
                            finish(rec)
                            continue
                rec["output"] = dest
                rec["_out_rel"] = out_rel
            elif options.in_place:
                rec["output"] = src
                rec["_out_rel"] = rel
            rec["_src_fmt"] = src_fmt
            rec["_sha"] = sha
            rec["_root"] = root
            task = {"data": data, "format": fmt, "target": options.target, "denoise": options.denoise,
                    "backend": options.backend, "strip_metadata": options.strip_metadata, "source": src,
                    "compare": options.compare, "mark": options.mark and options.writes,
                    "calibrate": run_id if options.calibrate else None}
            yield rec, task

    ex, width, close = make_executor(executor, jobs)
    pending: dict[cf.Future, dict[str, Any]] = {}
    limit = max(2, 2 * width)
    try:
        it = tasks()
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                try:
                    rec, task = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending[ex.submit(work, task)] = rec
            if not pending:
                break
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                rec = pending.pop(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # a worker died (process pool broken, Dask worker lost)
                    res = {"ok": False, "error": f"worker failed: {type(exc).__name__}: {exc}"}
                _decide(rec, res, options, manifest_for(rec["_root"]), okey, __version__)
                for k in [k for k in rec if k.startswith("_")]:
                    del rec[k]
                finish(rec)
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        close()
        result.files = files
        result.summary = summarize(files)
    return result


def _decide(rec: dict[str, Any], res: dict[str, Any], options: BatchOptions, man: Manifest, okey: str,
            version: str) -> None:
    """Turn a worker's answer into an action (write, keep, report) for one file."""
    from .targets import Target

    if not res.get("ok"):
        rec.update(status="failed", reason=res.get("error", "failed"), output=None)
        return
    record = res["record"]
    tgt = Target.parse(options.target)
    quality = res["quality"]
    met = record.get("target_met")
    if met is None:
        met = tgt.metric in quality and tgt.met(quality[tgt.metric])
    before, after = rec["bytes_before"], len(res["data"])
    saving = 1.0 - after / before if before else 0.0
    rec.update(format=res["format"], params=res["params"], quality=quality, target_met=bool(met),
               bytes_after=after, saving=saving, encodes=record.get("encodes", 0),
               preprocessing=record.get("preprocessing", {}), reason=record.get("reason", ""),
               record=record, seconds=round(res.get("seconds", 0.0), 4))
    if "plain" in res:
        rec["plain"] = res["plain"]
    if options.compare:
        rec.update(status="compared", output=None)
        return
    same_format = rec["_src_fmt"] == res["format"]
    good = bool(met) and saving >= options.min_saving
    if options.in_place:
        if not good:
            why = "target not met" if not met else f"saving {saving:.1%} below the {options.min_saving:.0%} threshold"
            rec.update(status="kept", reason=f"original kept: {why}", bytes_after=before, saving=0.0)
            if options.writes:
                man.append({"kind": "kept", "path": rec["_out_rel"], "source_sha256": rec["_sha"], "options": okey,
                            "version": version, "reason": why, "time": time.time()})
            return
        if not options.writes:
            rec["status"] = "dry-run"
            return
        _write(rec, res["data"], man, okey, version)
        return
    # -o OUTDIR (or dry run)
    data = res["data"]
    if same_format and not good:
        why = "target not met" if not met else f"saving {saving:.1%} below the {options.min_saving:.0%} threshold"
        rec.update(reason=f"original copied: {why}", bytes_after=before, saving=0.0)
        with open(rec["source"], "rb") as f:
            data = f.read()
    if not options.writes:
        rec["status"] = "dry-run"
        return
    _write(rec, data, man, okey, version)


def _write(rec: dict[str, Any], data: bytes, man: Manifest, okey: str, version: str) -> None:
    from .io import atomic_write

    out_sha = _sha(data)
    # write-ahead: the output's hash is in the manifest before the output exists
    man.append({"kind": "output", "path": rec["_out_rel"], "output": rec["_out_rel"], "source_sha256": rec["_sha"],
                "output_sha256": out_sha, "options": okey, "version": version, "bytes_before": rec["bytes_before"],
                "bytes_after": len(data), "time": time.time()})
    try:
        atomic_write(rec["output"], data)
    except OSError as exc:
        rec.update(status="failed", reason=f"cannot write {rec['output']}: {exc.strerror or exc}")
        return
    rec["status"] = "written"


def summarize(files: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over per-file records (the summary table)."""
    done = [f for f in files if f["status"] in ("written", "kept", "dry-run", "compared")]
    before = sum(f["bytes_before"] or 0 for f in done)
    after = sum(f["bytes_after"] or 0 for f in done)
    out = {
        "files": len(files),
        "processed": len(done),
        "written": sum(f["status"] == "written" for f in files),
        "kept": sum(f["status"] == "kept" for f in files),
        "bytes_before": before,
        "bytes_after": after,
        "saving": (1 - after / before) if before else 0.0,
        "target_misses": sum(f.get("target_met") is False for f in done),
        "skipped": sum(f["status"] == "skipped" for f in files),
        "failed": sum(f["status"] == "failed" for f in files),
    }
    plain = [f for f in done if f.get("plain")]
    if plain:
        pb = sum(f["plain"]["bytes"] for f in plain)
        out["plain_bytes"] = pb
        out["saving_vs_plain"] = 1 - sum(f["bytes_after"] for f in plain) / pb if pb else 0.0
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """The summary table printed at the end of ``precodec optimize``."""
    rows = [
        ("files", f"{summary['files']}"),
        ("written", f"{summary['written']}"),
        ("kept (no gain)", f"{summary['kept']}"),
        ("bytes before", f"{summary['bytes_before']:,}"),
        ("bytes after", f"{summary['bytes_after']:,}"),
        ("saving", f"{summary['saving']:.1%}"),
        ("target misses", f"{summary['target_misses']}"),
        ("skipped", f"{summary['skipped']}"),
        ("failed", f"{summary['failed']}"),
    ]
    if "plain_bytes" in summary:
        rows.insert(5, ("plain encoder bytes", f"{summary['plain_bytes']:,}"))
        rows.insert(7, ("saving vs plain", f"{summary['saving_vs_plain']:.1%}"))
    w = max(len(k) for k, _ in rows)
    v = max(len(x) for _, x in rows)
    lines = [f"| {'summary':<{w}} | {'':>{v}} |", f"|{'-' * (w + 2)}|{'-' * (v + 2)}|"]
    lines += [f"| {k:<{w}} | {x:>{v}} |" for k, x in rows]
    return "\n".join(lines)
