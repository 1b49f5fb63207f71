"""The CI quality gate behind ``precodec gate``.

Three checks, each a list of :class:`Finding`:

* :func:`check_savings` -- an asset that precodec could make more than
  ``max_saving`` smaller at the target is *unoptimized* (fails).  The file
  itself is the reference, so the quality is what a viewer would see
  against what is committed.
* :func:`check_sources` -- derived images checked against their sources
  (same relative path and stem under ``source_dir``, any extension): fails
  when one falls below the target, has another size, or has no source.
* :func:`check_baseline` -- reruns a corpus (the same work as ``precodec
  optimize``) and compares bytes and quality with a stored result, so an
  upgrade of precodec or of its models is known before release.  Fails when
  total or per-file bytes grow beyond ``bytes_tolerance``, when a file's
  quality drops by more than ``quality_tolerance`` points, or when a file
  that met the target no longer does.  :func:`baseline_document` writes one.

Reporters turn findings into JSON, JUnit XML, GitHub annotations
(``::error file=...::``) and a Markdown summary.

Example
-------
>>> f = Finding(path="a.jpg", check="saving", ok=False, message="could be 30% smaller")
>>> github_annotations([f]).startswith("::error file=a.jpg")
True
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .batch import discover, make_executor, work
from .errors import ImageInputError, OptionError
from .targets import Target

__all__ = [
    "Finding",
    "check_savings",
    "check_sources",
    "check_baseline",
    "baseline_document",
    "to_json",
    "to_junit",
    "github_annotations",
    "to_markdown",
]

_FORMAT_BY_EXT = {".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".avif": "avif"}


@dataclass
class Finding:
    """The verdict of one check on one file.

    Attributes
    ----------
    path : str
    check : {"saving", "source", "baseline", "error"}
    ok : bool
    message : str
    data : dict
        Numbers behind the verdict (bytes, possible saving, quality...).
    """

    path: str
    check: str
    ok: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def _run_all(items: Sequence[tuple[str, str, str]], target: str, *, backend: str | None, jobs: int,
             executor: str | None) -> dict[str, dict[str, Any]]:
    """Run :func:`precodec.batch.work` on (key, path, format) items; return key -> answer."""
    import concurrent.futures as cf

    ex, _, close = make_executor(executor, jobs)
    out: dict[str, dict[str, Any]] = {}
    try:
        futs = {}
        for key, path, fmt in items:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                out[key] = {"ok": False, "error": f"cannot read: {exc.strerror or exc}"}
                continue
            task = {"data": data, "format": fmt, "target": target, "backend": backend, "source": path, "mark": False}
            futs[ex.submit(work, task)] = (key, len(data))
        for fut in cf.as_completed(futs):
            key, size = futs[fut]
            try:
                ans = fut.result()
            except Exception as exc:
                ans = {"ok": False, "error": f"worker failed: {exc}"}
            ans["bytes_before"] = size
            out[key] = ans
    finally:
        close()
    return out


def _files(paths: Sequence[str], fmt: str) -> list[tuple[str, str, str]]:
    """(relative key, path, format) for the images the gate looks at."""
    out = []
    for root, rel in discover(paths):
        ext = os.path.splitext(rel)[1].lower()
        f = _FORMAT_BY_EXT.get(ext) if fmt == "auto" else fmt
        if f is None:
            continue
        out.append((rel.replace(os.sep, "/"), os.path.join(root, rel), f))
    return out


def check_savings(paths: Sequence[str], *, target: str, max_saving: float, format: str = "auto",
                  backend: str | None = None, jobs: int = 1, executor: str | None = None) -> list[Finding]:
    """Fail every image that could be more than ``max_saving`` smaller at ``target``.

    With ``format="auto"`` JPEG and AVIF files are checked in their own
    format; other files are ignored unless a format is given.

    Examples
    --------
    >>> check_savings([], target="ssimulacra2:80", max_saving=0.05)
    []
    """
    tgt = Target.parse(target)
    items = _files(paths, format)
    findings = []
    ours = _precodec_outputs(paths, items)
    small = _too_small_items(items, tgt.metric)
    answers = _run_all([i for i in items if i[0] not in ours and i[0] not in small], str(tgt), backend=backend,
                       jobs=jobs, executor=executor)
    for key, path, _ in items:
        if key in ours:
            findings.append(Finding(path, "saving", True, f"precodec output ({ours[key]}): not recompressed"))
            continue
        if key in small:  # a spacer or a tracking pixel: nothing to measure, nothing to fail
            findings.append(Finding(path, "saving", True, f"{small[key]}: not checked"))
            continue
        a = answers[key]
        if not a.get("ok"):
            findings.append(Finding(path, "error", False, a.get("error", "failed")))
            continue
        before, after = a["bytes_before"], len(a["data"])
        q = a["quality"].get(tgt.metric)
        met = bool(a["record"].get("target_met")) if a["record"].get("target_met") is not None else (
            q is not None and tgt.met(q))
        saving = 1 - after / before if before else 0.0
        data = {"bytes": before, "optimized_bytes": after, "possible_saving": saving, "quality": q,
                "params": a["params"], "target": str(tgt)}
        if met and saving > max_saving:
            findings.append(Finding(path, "saving", False,
                                    f"could be {saving:.1%} smaller at {tgt} ({before} -> {after} bytes, "
                                    f"{a['params']}); run `precodec optimize --in-place`", data))
        else:
            why = f"possible saving {saving:.1%} <= {max_saving:.1%}" if met else f"target {tgt} not reachable smaller"
            findings.append(Finding(path, "saving", True, why, data))
    return findings


def _too_small_items(items: Sequence[tuple[str, str, str]], metric: str) -> dict[str, str]:
    """Items too small for ``metric`` to score (read from the header): key -> why."""
    from PIL import Image

    from .metrics import too_small

    out = {}
    for key, path, _ in items:
        try:
            with Image.open(path) as im:
                why = too_small(metric, *im.size)
        except Exception:  # unreadable: the check itself reports it
            continue
        if why:
            out[key] = why
    return out


def _precodec_outputs(paths: Sequence[str], items: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """Items that are precodec's own output (JPEG COM marker, or listed in a batch manifest): key -> how known."""
    import hashlib

    from .batch import MANIFEST_NAME, Manifest, has_precodec_marker

    manifests: dict[str, Manifest] = {}
    out = {}
    for key, path, _ in items:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if has_precodec_marker(data):
            out[key] = "JPEG marker"
            continue
        folder = os.path.dirname(os.path.abspath(path))
        while True:  # the nearest manifest above the file
            if folder not in manifests and os.path.exists(os.path.join(folder, MANIFEST_NAME)):
                manifests[folder] = Manifest(folder)
            if folder in manifests:
                if hashlib.sha256(data).hexdigest() in manifests[folder].outputs:
                    out[key] = "manifest"
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return out


def _find_source(source_dir: str, rel: str) -> str | None:
    stem = os.path.splitext(rel)[0]
    folder = os.path.join(source_dir, os.path.dirname(rel))
    base = os.path.basename(stem)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for n in names:
        if os.path.splitext(n)[0] == base and os.path.isfile(os.path.join(folder, n)):
            return os.path.join(folder, n)
    return None


def check_sources(paths: Sequence[str], source_dir: str, *, target: str) -> list[Finding]:
    """Fail every derived image below ``target`` against its source in ``source_dir``.

    The source of ``PATH/a/b.jpg`` is ``SOURCE/a/b.*`` (any extension).
    """
    from .intake import load_image
    from .metrics import score, too_small

    if not os.path.isdir(source_dir):
        raise OptionError(f"--source {source_dir!r} is not a folder")
    tgt = Target.parse(target)
    findings = []
    for root, rel in discover(paths):
        path = os.path.join(root, rel)
        src = _find_source(source_dir, rel)
        if src is None:
            findings.append(Finding(path, "source", False, f"no source for {rel} in {source_dir}"))
            continue
        try:
            ref, dist = load_image(src), load_image(path)
        except ImageInputError as exc:
            findings.append(Finding(path, "error", False, str(exc)))
            continue
        if ref.size != dist.size:
            findings.append(Finding(path, "source", False, f"size {dist.size} differs from the source's {ref.size}",
                                    {"source": src}))
            continue
        small = too_small(tgt.metric, *ref.size)
        if small:  # a spacer or a tracking pixel: nothing to measure, nothing to fail
            findings.append(Finding(path, "source", True, f"{small}: not checked", {"source": src}))
            continue
        a, b = ref.rgb(), dist.rgb()
        if a.ndim != b.ndim:  # grey against colour: compare in colour
            import numpy as np

            a = a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)
            b = b if b.ndim == 3 else np.repeat(b[..., None], 3, axis=2)
        q = score(tgt.metric, a, b)
        data = {"source": src, "quality": q, "target": str(tgt)}
        if tgt.met(q):
            findings.append(Finding(path, "source", True, f"{tgt.metric} {q:.2f} >= {tgt.value:g}", data))
        else:
            findings.append(Finding(path, "source", False,
                                    f"{tgt.metric} {q:.2f} against {src} is below the target {tgt}", data))
    return findings


def _corpus(paths: Sequence[str], *, target: str, format: str, backend: str | None, jobs: int,
            executor: str | None) -> dict[str, dict[str, Any]]:
    tgt = Target.parse(target)
    items = []
    for key, path, f in _files(paths, "auto" if format == "auto" else format):
        items.append((key, path, f))
    if format == "auto":  # a corpus of PNGs etc. is benchmarked as JPEG
        known = {k for k, _, _ in items}
        for root, rel in discover(paths):
            k = rel.replace(os.sep, "/")
            if k not in known:
                items.append((k, os.path.join(root, rel), "jpeg"))
    small = _too_small_items(items, tgt.metric)
    answers = _run_all([i for i in items if i[0] not in small], str(tgt), backend=backend, jobs=jobs,
                       executor=executor)
    out = {}
    for key, path, f in sorted(items):
        if key in small:  # not in the corpus: nothing to measure
            continue
        a = answers[key]
        if a.get("ok"):
            out[key] = {"path": path, "format": f, "bytes": len(a["data"]), "quality": a["quality"].get(tgt.metric),
                        "target_met": a["record"].get("target_met"), "params": a["params"],
                        "encodes": a["record"].get("encodes")}
        else:
            out[key] = {"path": path, "format": f, "error": a.get("error")}
    return out


def baseline_document(paths: Sequence[str], *, target: str, format: str = "auto", backend: str | None = None,
                      jobs: int = 1, executor: str | None = None) -> dict[str, Any]:
    """Run the corpus and return the baseline document (what ``--update-baseline`` writes)."""
    from ._version import __version__

    files = _corpus(paths, target=target, format=format, backend=backend, jobs=jobs, executor=executor)
    ok = [v for v in files.values() if "bytes" in v]
    return {
        "precodec": __version__,
        "target": str(Target.parse(target)),
        "format": format,
        "files": {k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in files.items()},
        "totals": {"files": len(ok), "bytes": sum(v["bytes"] for v in ok),
                   "mean_quality": (sum(v["quality"] for v in ok) / len(ok)) if ok else None},
    }


def check_baseline(paths: Sequence[str], baseline: dict[str, Any], *, target: str | None = None,
                   format: str | None = None, backend: str | None = None, bytes_tolerance: float = 0.02,
                   quality_tolerance: float = 1.0, jobs: int = 1,
                   executor: str | None = None) -> tuple[list[Finding], dict[str, Any]]:
    """Rerun the corpus and compare it with ``baseline``; return findings and the new document."""
    target = target or baseline.get("target")
    if not target:
        raise OptionError("the baseline names no target; pass --target")
    if Target.parse(target) != Target.parse(baseline.get("target", target)):
        raise OptionError(f"target {target!r} differs from the baseline's {baseline.get('target')!r}")
    fmt = format or baseline.get("format", "auto")
    now = baseline_document(paths, target=target, format=fmt, backend=backend, jobs=jobs, executor=executor)
    old_files = baseline.get("files", {})
    findings = []
    for key, cur in now["files"].items():
        path = cur.get("path") or key
        old = old_files.get(key)
        if "error" in cur:
            findings.append(Finding(key, "error", False, cur["error"]))
            continue
        if old is None or "bytes" not in old:
            findings.append(Finding(key, "baseline", True, "new file (not in the baseline)", cur))
            continue
        d_bytes = cur["bytes"] / old["bytes"] - 1 if old["bytes"] else 0.0
        d_q = (cur["quality"] or 0.0) - (old.get("quality") or 0.0)
        data = {"bytes": cur["bytes"], "baseline_bytes": old["bytes"], "bytes_change": d_bytes,
                "quality": cur["quality"], "baseline_quality": old.get("quality"), "quality_change": d_q}
        problems = []
        if d_bytes > bytes_tolerance:
            problems.append(f"bytes +{d_bytes:.1%} ({old['bytes']} -> {cur['bytes']}) beyond {bytes_tolerance:.1%}")
        if d_q < -quality_tolerance:
            problems.append(f"quality {d_q:+.2f} ({old.get('quality'):.2f} -> {cur['quality']:.2f}) "
                            f"beyond -{quality_tolerance:g}")
        if old.get("target_met") and cur.get("target_met") is False:
            problems.append("target no longer met")
        if problems:
            findings.append(Finding(key, "baseline", False, "; ".join(problems), data))
        else:
            findings.append(Finding(key, "baseline", True, f"bytes {d_bytes:+.1%}, quality {d_q:+.2f}", data))
    for key in sorted(set(old_files) - set(now["files"])):
        findings.append(Finding(key, "baseline", True, "in the baseline, not in the corpus (ignored)"))
    ob, nb = baseline.get("totals", {}).get("bytes"), now["totals"]["bytes"]
    common = [k for k in now["files"] if "bytes" in now["files"][k] and "bytes" in old_files.get(k, {})]
    if common:
        ob = sum(old_files[k]["bytes"] for k in common)
        nb = sum(now["files"][k]["bytes"] for k in common)
        d = nb / ob - 1 if ob else 0.0
        findings.append(Finding("(corpus total)", "baseline", d <= bytes_tolerance,
                                f"total bytes {ob} -> {nb} ({d:+.2%}; tolerance {bytes_tolerance:.1%})",
                                {"bytes": nb, "baseline_bytes": ob, "bytes_change": d}))
    return findings, now


# --------------------------------------------------------------------------- reporters


def _rel(path: str) -> str:
    try:
        r = os.path.relpath(path)
    except ValueError:
        return path
    return path if r.startswith("..") else r


def to_json(findings: Sequence[Finding], *, extra: dict[str, Any] | None = None) -> str:
    """Findings as a JSON document (``passed``, counts, one entry per finding)."""
    failed = [f for f in findings if not f.ok]
    doc = {"passed": not failed, "checked": len(findings), "failed": len(failed),
           "findings": [asdict(f) for f in findings], **(extra or {})}
    return json.dumps(doc, indent=2, default=str)


def to_junit(findings: Sequence[Finding], *, name: str = "precodec gate") -> str:
    """Findings as JUnit XML: one testcase per finding, a failure element for each failed one."""
    failed = sum(not f.ok for f in findings)
    suite = ET.Element("testsuite", name=name, tests=str(len(findings)), failures=str(failed), errors="0")
    for f in findings:
        tc = ET.SubElement(suite, "testcase", classname=f"precodec.gate.{f.check}", name=_rel(f.path))
        if not f.ok:
            ET.SubElement(tc, "failure", message=f.message, type=f.check).text = f.message
        else:
            ET.SubElement(tc, "system-out").text = f.message
    root = ET.Element("testsuites", tests=str(len(findings)), failures=str(failed))
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _gh_escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        s = s.replace(":", "%3A").replace(",", "%2C")
    return s


def github_annotations(findings: Sequence[Finding]) -> str:
    """``::error file=PATH,title=...::message`` lines for the failed findings (GitHub Actions)."""
    lines = []
    for f in findings:
        if f.ok:
            continue
        if f.path.startswith("("):
            lines.append(f"::error title={_gh_escape('precodec ' + f.check, True)}::{_gh_escape(f.message)}")
        else:
            lines.append(f"::error file={_gh_escape(_rel(f.path), True)},title="
                         f"{_gh_escape('precodec ' + f.check, True)}::{_gh_escape(f.message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def to_markdown(findings: Sequence[Finding], *, title: str = "precodec gate") -> str:
    """A Markdown summary: verdict, counts, a table of failures (and of the rest, collapsed)."""
    failed = [f for f in findings if not f.ok]
    verdict = "failed" if failed else "passed"
    out = [f"### {title}: {verdict} {'❌' if failed else '✅'}", "",
           f"{len(findings)} checks, {len(failed)} failed.", ""]

    def table(rows: Sequence[Finding]) -> list[str]:
        t = ["| file | check | result |", "|---|---|---|"]
        for f in rows:
            t.append(f"| `{_rel(f.path)}` | {f.check} | {f.message.replace('|', '/')} |")
        return t

    if failed:
        out += table(failed) + [""]
    passed = [f for f in findings if f.ok]
    if passed:
        out += ["<details><summary>passed</summary>", ""] + table(passed) + ["", "</details>", ""]
    return "\n".join(out)
