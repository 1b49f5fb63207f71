"""The HTML report: self-contained, plots drawn as inline SVG, rendered by headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from PIL import Image

from precodec.report import render_html, write_json

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _records(n=5):
    recs = []
    for i in range(n):
        q = 78.0 + i
        recs.append({"source": f"/data/img{i}.jpg", "status": "written", "format": "jpeg",
                     "bytes_before": 20000 + 1000 * i, "bytes_after": 9000 + 800 * i,
                     "saving": 1 - (9000 + 800 * i) / (20000 + 1000 * i), "quality": {"ssimulacra2": q},
                     "target": "ssimulacra2:80", "target_met": q >= 80, "params": {"quality": 60 + i}})
    recs.append({"source": "/data/<script>alert(1)</script>.jpg", "status": "failed", "bytes_before": 10,
                 "bytes_after": None, "saving": None, "quality": {}, "reason": "not a readable image"})
    return recs


def test_page_is_self_contained_with_three_plots():
    page = render_html(_records(), {"files": 6, "saving": 0.5}, options={"target": "ssimulacra2:80"})
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="plot"') == 3
    assert len(re.findall(r'class="bar"', page)) == 5
    assert page.count('class="point"') == 10 and page.count('class="target"') == 2
    # nothing fetched: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "<script>alert(1)</script>" not in page  # file names are escaped
    assert "&lt;script&gt;" in page


def test_json_report_is_one_record_per_file(tmp_path):
    p = tmp_path / "r.json"
    recs = _records()
    recs[0]["_private"] = "dropped"
    write_json(str(p), recs, {"files": 6})
    import json

    doc = json.loads(p.read_text())
    assert len(doc["files"]) == 6 and "_private" not in doc["files"][0] and doc["precodec"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium chromium-driver); "
                "the HTML report was not opened in a browser")


def _run_chromium(exe: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="precodec-chromium-") as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=120)


def test_report_renders_its_plots_in_chromium(run_cli, tmp_path, make_photo):
    exe = _chromium()
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(make_photo(64, 80, seed=i)).save(d / f"p{i}.jpg", quality=97)
    html = tmp_path / "report.html"
    r = run_cli("optimize", d, "--dry-run", "--target", "ssimulacra2:60", "-j", "1", "--html", html)
    assert r.returncode == 0, r.stderr
    url = "file://" + str(html)
    dom = _run_chromium(exe, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the page's own check: every plot has a size and marks once laid out
    assert b'data-plots-rendered="3"' in dom.stdout
    shot = tmp_path / "shot.png"
    s = _run_chromium(exe, "--window-size=1400,1000", f"--screenshot={shot}", url)
    assert shot.exists(), s.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    blue = np.all(np.abs(px - np.array([0x2B, 0x7B, 0xBA])) <= 12, axis=-1)  # bars and points: target met
    red = np.all(np.abs(px - np.array([0xD6, 0x27, 0x28])) <= 40, axis=-1)  # the dashed target line
    assert blue.sum() > 500, "no plot marks were painted"
    assert red.sum() > 50, "the target line was not painted"
    assert px.std() > 10  # not a blank page
    os.environ.get("PRECODEC_KEEP_SCREENSHOT") and shutil.copy(shot, os.environ["PRECODEC_KEEP_SCREENSHOT"])
