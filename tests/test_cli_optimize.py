"""``precodec optimize`` as a subprocess on real files: outputs, safety, resume, kill, Dask."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

from precodec.batch import MANIFEST_NAME, Manifest, has_precodec_marker

TARGET = "ssimulacra2:60"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def corpus(tmp_path, make_photo):
    """photos/: 3 big JPEGs (q 97), a PNG in a subfolder, a broken file."""
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(make_photo(64, 96, seed=i)).save(d / f"p{i}.jpg", quality=97)
    Image.fromarray(make_photo(64, 64, seed=9)).save(d / "sub" / "g.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return d


def test_out_dir_keeps_relative_paths_and_reports(run_cli, corpus, tmp_path):
    out, rep, html = tmp_path / "out", tmp_path / "r.json", tmp_path / "r.html"
    before = _tree(corpus)
    r = run_cli("optimize", corpus, "-o", out, "--target", TARGET, "--jobs", "2", "--report", rep, "--html", html)
    assert r.returncode == 1, r.stderr  # the broken file fails, the rest goes on
    assert "broken.jpg" in r.stderr
    assert _tree(corpus) == before  # inputs untouched
    assert (out / "p0.jpg").exists() and (out / "sub" / "g.jpg").exists()  # PNG -> JPEG, same relative path
    for p in out.rglob("*.jpg"):
        with Image.open(p) as im:
            im.load()
    doc = json.loads(rep.read_text())
    files = {Path(f["source"]).name: f for f in doc["files"]}
    assert files["broken.jpg"]["status"] == "failed"
    f = files["p0.jpg"]
    for key in ("source", "output", "format", "params", "bytes_before", "bytes_after", "quality", "encodes",
                "preprocessing", "reason", "target_met"):
        assert key in f
    assert f["status"] == "written" and f["bytes_after"] < f["bytes_before"] and f["quality"]["ssimulacra2"] >= 59.5
    s = doc["summary"]
    assert s["files"] == 5 and s["failed"] == 1 and s["bytes_after"] < s["bytes_before"]
    assert "| saving" in r.stdout and "| failed" in r.stdout  # the summary table
    assert "[1/5]" in r.stderr  # plain progress lines when not a TTY
    assert "<svg" in html.read_text()
    # rerun: everything already done is skipped, outputs unchanged
    outs = _tree(out)
    r2 = run_cli("optimize", corpus, "-o", out, "--target", TARGET, "--jobs", "1", "--report", rep)
    doc2 = json.loads(rep.read_text())
    st = {Path(f["source"]).name: f["status"] for f in doc2["files"]}
    assert st["p0.jpg"] == "skipped" and st["g.png"] == "skipped"
    assert _tree(out) == outs
    assert r2.returncode == 1


def test_dry_run_changes_nothing(run_cli, corpus, tmp_path):
    before = _tree(corpus)
    r = run_cli("optimize", corpus, "--dry-run", "--target", TARGET, "-j", "1", "--report", tmp_path / "r.json")
    assert r.returncode == 1
    assert _tree(corpus) == before and not (corpus / MANIFEST_NAME).exists()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {f["status"] for f in doc["files"]} >= {"dry-run", "failed"}


def test_compare_writes_only_the_report(run_cli, corpus, tmp_path):
    before = _tree(corpus)
    rep = tmp_path / "cmp.json"
    r = run_cli("optimize", corpus, "--compare", "--target", TARGET, "-j", "1", "--report", rep)
    assert r.returncode == 1
    assert _tree(corpus) == before
    doc = json.loads(rep.read_text())
    f = next(f for f in doc["files"] if f["source"].endswith("p1.jpg"))
    assert f["status"] == "compared"
    assert f["plain"]["bytes"] > 0 and "ssimulacra2" in f["plain"]["quality"]
    assert "plain_bytes" in doc["summary"]
    assert "saving vs plain" in r.stdout


def test_in_place_replaces_only_better_and_never_recompresses(run_cli, corpus, tmp_path, make_photo):
    small = corpus / "tiny.jpg"
    Image.fromarray(make_photo(64, 64, seed=5)).save(small, quality=10)  # cannot reach a high target smaller
    orig = _tree(corpus)
    r = run_cli("optimize", corpus, "--in-place", "--target", TARGET, "-j", "1", "--report", tmp_path / "a.json")
    assert r.returncode == 1
    doc = {Path(f["source"]).name: f for f in json.loads((tmp_path / "a.json").read_text())["files"]}
    assert doc["p0.jpg"]["status"] == "written"
    new = (corpus / "p0.jpg").read_bytes()
    assert len(new) < len(orig["p0.jpg"]) and has_precodec_marker(new)
    assert doc["g.png"]["status"] == "skipped"  # in place keeps the format
    assert (corpus / "sub" / "g.png").read_bytes() == orig["sub/g.png"]
    if doc["tiny.jpg"]["status"] != "written":
        assert small.read_bytes() == orig["tiny.jpg"]
    for name, data in _tree(corpus).items():
        if name in orig and name.endswith(".jpg") and data != orig[name]:
            assert len(data) < len(orig[name])  # never larger
    # rerun: precodec's own output is never recompressed; kept files are not redone
    after = _tree(corpus)
    r2 = run_cli("optimize", corpus, "--in-place", "--target", TARGET, "-j", "1", "--report", tmp_path / "b.json")
    doc2 = {Path(f["source"]).name: f for f in json.loads((tmp_path / "b.json").read_text())["files"]}
    assert doc2["p0.jpg"]["status"] == "skipped" and "precodec output" in doc2["p0.jpg"]["reason"]
    assert _tree(corpus) == after
    assert r2.returncode == 1


def test_bad_usage_exits_2(run_cli, corpus, tmp_path):
    r = run_cli("optimize", corpus, "-o", tmp_path / "o", "--target", "nonsense:5")
    assert r.returncode == 2 and "nonsense" in r.stderr
    r = run_cli("optimize", tmp_path / "missing", "-o", tmp_path / "o")
    assert r.returncode == 2 and "does not exist" in r.stderr


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_kill_mid_in_place_run_loses_nothing_and_rerun_finishes(tmp_path, make_photo):
    d = tmp_path / "k"
    d.mkdir()
    n = 16
    for i in range(n):
        Image.fromarray(make_photo(96, 96, seed=20 + i)).save(d / f"f{i:02d}.jpg", quality=97)
    orig = _tree(d)
    cmd = [sys.executable, "-m", "precodec", "optimize", str(d), "--in-place", "--target", TARGET, "-j", "1", "-q"]
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        man = d / MANIFEST_NAME
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            if man.exists() and man.read_text().count("\n") >= 3:
                break
            time.sleep(0.02)
        assert p.poll() is None, "the run finished before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert p.returncode == -signal.SIGKILL
    ours = Manifest(str(d)).outputs
    state = _tree(d)
    replaced = 0
    for name, data in orig.items():
        now = state[name]
        with Image.open(d / name) as im:
            im.load()  # every file decodes
        if now != data:
            assert _sha(now) in ours and has_precodec_marker(now)  # a finished result, never a partial one
            replaced += 1
    assert 1 <= replaced < n  # killed in the middle
    (d / ".precodec-stale.tmp").write_bytes(b"half")  # what a kill inside atomic_write leaves
    r = subprocess.run(cmd[:-1], cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    final = _tree(d)
    assert not any(k.startswith(".precodec-") and k.endswith(".tmp") for k in final)
    ours = Manifest(str(d)).outputs
    for name, data in orig.items():
        assert final[name] == data or _sha(final[name]) in ours
        if final[name] != data:
            assert len(final[name]) < len(data)
    assert sum(final[name] != data for name, data in orig.items()) > replaced  # the rerun did the rest
    # a third run has nothing left to do
    r3 = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert r3.returncode == 0 and _tree(d) == final


def test_dask_executor_on_a_local_cluster(run_cli, corpus, tmp_path):
    distributed = pytest.importorskip("distributed", reason="Dask is not installed (pip install precodec[dask])")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1",
                                       protocol="tcp://", dashboard_address=None)
    try:
        addr = cluster.scheduler_address
        assert addr.startswith("tcp://127.0.0.1:")
        out, rep = tmp_path / "dout", tmp_path / "d.json"
        r = run_cli("optimize", corpus, "-o", out, "--target", TARGET, "--executor", "dask://" + addr.split("://")[1],
                    "--report", rep, timeout=300)
        assert r.returncode == 1, r.stderr  # the broken file, reported
        doc = json.loads(rep.read_text())
        assert sum(f["status"] == "written" for f in doc["files"]) == 4
        assert (out / "p2.jpg").exists() and (out / "sub" / "g.jpg").exists()
    finally:
        cluster.close()


def test_progress_bar_on_a_terminal_plain_lines_otherwise():
    import io

    from precodec.batch import Progress

    rec = {"source": "/a/b.jpg", "status": "written", "bytes_before": 100, "bytes_after": 60, "saving": 0.4}
    tty, plain = io.StringIO(), io.StringIO()
    for stream, is_tty in ((tty, True), (plain, False)):
        p = Progress(2, stream, tty=is_tty)
        p.update(rec)
        p.update(rec)
    assert tty.getvalue().startswith("\r[") and "2/2" in tty.getvalue() and tty.getvalue().endswith("\n")
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("[1/2] written") and "saved 40.0%" in lines[0] and "\r" not in plain.getvalue()


def test_marker_is_found_only_in_headers():
    import io

    from precodec.batch import add_jpeg_marker

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "JPEG")
    data = buf.getvalue()
    assert not has_precodec_marker(data)
    marked = add_jpeg_marker(data, "0.1.0 ssimulacra2:80")
    assert has_precodec_marker(marked) and len(marked) - len(data) < 64
    with Image.open(io.BytesIO(marked)) as im:
        im.load()  # still a valid JPEG
    assert not has_precodec_marker(data[:-2] + b"precodec " + data[-2:])  # text after the scan does not count


def test_images_too_small_to_score_are_skipped_not_failed(run_cli, tmp_path, make_photo):
    # a spacer GIF or a tracking pixel is not bad input: SSIMULACRA2 cannot score it (under 8 px on a side), so
    # it is left as it is and reported as skipped; a target whose metric scores any size still handles it
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(make_photo(1, 1, seed=1)).save(d / "pixel.png")
    Image.fromarray(make_photo(4, 300, seed=2)).save(d / "strip.png")
    out, rep = tmp_path / "out", tmp_path / "r.json"
    r = run_cli("optimize", d, "-o", out, "--target", TARGET, "--report", rep)
    assert r.returncode == 0, r.stderr
    files = {Path(f["source"]).name: f for f in json.loads(rep.read_text())["files"]}
    assert {f["status"] for f in files.values()} == {"skipped"}
    assert "cannot score a 300x4 image" in files["strip.png"]["reason"]
    assert not out.exists() or not any(out.rglob("*.*"))
    r = run_cli("optimize", d, "-o", tmp_path / "out2", "--target", "psnr:30", "--report", rep)
    assert r.returncode == 0, r.stderr
    assert all(f["status"] != "skipped" for f in json.loads(rep.read_text())["files"])


def test_calibrate_corrects_the_predictor_over_the_run_only_when_asked(run_cli, tmp_path, make_photo):
    from precodec.batch import BatchOptions, run_batch

    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(make_photo(96, 128, seed=i)).save(d / f"p{i}.png")
    opts = dict(target="ssimulacra2:80", format="jpeg", dry_run=True)
    r = run_batch([str(d)], BatchOptions(**opts), quiet=True)
    assert all("calibration" not in f["record"]["predicted"] for f in r.files)  # off by default
    r = run_batch([str(d)], BatchOptions(**opts, calibrate=True), quiet=True)
    cal = [f["record"]["predicted"]["calibration"]["jpeg"] for f in r.files]
    assert sorted(c["images"] for c in cal) == [0, 1, 2]  # each image starts from the ones before it
    assert next(c for c in cal if c["images"] == 0)["offset"] == 0.0
    rep = tmp_path / "r.json"
    out = run_cli("optimize", d, "--dry-run", "--format", "jpeg", "--target", "ssimulacra2:80", "--jobs", "1",
                  "--calibrate", "--report", rep)
    assert out.returncode == 0, out.stderr
    files = json.loads(rep.read_text())["files"]
    assert sorted(f["record"]["predicted"]["calibration"]["jpeg"]["images"] for f in files) == [0, 1, 2]
