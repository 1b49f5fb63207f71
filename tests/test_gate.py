"""``precodec gate`` as a subprocess: savings, sources, baseline; JSON, JUnit, annotations, Markdown."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from precodec import gate

TARGET = "ssimulacra2:60"


@pytest.fixture
def assets(tmp_path, make_photo):
    d = tmp_path / "assets"
    d.mkdir()
    for i in range(2):
        Image.fromarray(make_photo(64, 96, seed=i)).save(d / f"fat{i}.jpg", quality=97)
    return d


def test_unoptimized_assets_fail_with_their_saving(run_cli, assets, tmp_path):
    summary = tmp_path / "summary.md"
    j, x = tmp_path / "g.json", tmp_path / "g.xml"
    r = run_cli("gate", assets, "--target", TARGET, "--max-saving", "5%", "--json", j, "--junit", x,
                env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert r.returncode == 1, r.stderr
    assert "FAIL" in r.stdout and "fat0.jpg" in r.stdout and "smaller at ssimulacra2:60" in r.stdout
    ann = [line for line in r.stdout.splitlines() if line.startswith("::error file=")]
    assert len(ann) == 2 and any("fat1.jpg" in a for a in ann)
    doc = json.loads(j.read_text())
    assert doc["passed"] is False and doc["failed"] == 2
    assert all(f["data"]["possible_saving"] > 0.05 for f in doc["findings"])
    root = ET.parse(x).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "2"
    assert len(root.findall(".//testcase/failure")) == 2
    md = summary.read_text()
    assert "failed" in md and "fat0.jpg" in md and "| file |" in md


def test_threshold_and_provenance(run_cli, assets, tmp_path):
    r = run_cli("gate", assets, "--target", TARGET, "--max-saving", "99%")
    assert r.returncode == 0 and "passed" in r.stdout
    opt = run_cli("optimize", assets, "--in-place", "--target", TARGET, "-j", "1")
    assert opt.returncode == 0, opt.stderr
    r = run_cli("gate", assets, "--target", TARGET, "--max-saving", "5%")
    assert r.returncode == 0, r.stdout  # precodec's own output passes (it is never recompressed)
    assert "precodec output" in r.stdout


def test_source_check(run_cli, tmp_path, make_photo):
    src, der = tmp_path / "src", tmp_path / "derived"
    src.mkdir()
    (der / "sub").mkdir(parents=True)
    (src / "sub").mkdir()
    for name, q in (("good", 95), ("bad", 3)):
        Image.fromarray(make_photo(64, 64, seed=len(name))).save(src / "sub" / f"{name}.png")
        Image.fromarray(make_photo(64, 64, seed=len(name))).save(der / "sub" / f"{name}.jpg", quality=q)
    r = run_cli("gate", der, "--source", src, "--target", TARGET, "--json", tmp_path / "s.json")
    assert r.returncode == 1
    doc = json.loads((tmp_path / "s.json").read_text())
    verdict = {f["path"].rsplit("/", 1)[-1]: f["ok"] for f in doc["findings"]}
    assert verdict == {"good.jpg": True, "bad.jpg": False}
    assert "below the target" in r.stdout
    (der / "orphan.jpg").write_bytes((der / "sub" / "good.jpg").read_bytes())
    r = run_cli("gate", der, "--source", src, "--target", TARGET)
    assert r.returncode == 1 and "no source" in r.stdout


def test_baseline_regression(run_cli, assets, tmp_path):
    base = tmp_path / "baseline.json"
    r = run_cli("gate", assets, "--target", TARGET, "--baseline", base, "--update-baseline")
    assert r.returncode == 0 and base.exists()
    doc = json.loads(base.read_text())
    assert set(doc["files"]) == {"fat0.jpg", "fat1.jpg"} and doc["totals"]["bytes"] > 0
    r = run_cli("gate", assets, "--baseline", base)
    assert r.returncode == 0, r.stdout
    # pretend the stored run was 20% smaller and better: today's run is a regression
    doc["files"]["fat0.jpg"]["bytes"] = int(doc["files"]["fat0.jpg"]["bytes"] * 0.8)
    doc["files"]["fat1.jpg"]["quality"] += 5
    base.write_text(json.dumps(doc))
    r = run_cli("gate", assets, "--baseline", base, "--junit", tmp_path / "b.xml")
    assert r.returncode == 1
    assert "fat0.jpg [baseline]: bytes +" in r.stdout and "fat1.jpg [baseline]: quality -" in r.stdout
    assert ET.parse(tmp_path / "b.xml").getroot().get("failures") == "3"  # two files and the corpus total


def test_usage_errors(run_cli, assets, tmp_path):
    r = run_cli("gate", assets, "--update-baseline")
    assert r.returncode == 2 and "--baseline" in r.stderr
    r = run_cli("gate", assets, "--baseline", tmp_path / "missing.json")
    assert r.returncode == 2


def test_reporters_escape_and_count():
    f = [gate.Finding("a,b:c.jpg", "saving", False, "50% smaller\nreally"),
         gate.Finding("ok.jpg", "saving", True, "fine")]
    ann = gate.github_annotations(f)
    assert ann == "::error file=a%2Cb%3Ac.jpg,title=precodec saving::50%25 smaller%0Areally\n"
    root = ET.fromstring(gate.to_junit(f))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    assert json.loads(gate.to_json(f))["passed"] is False
    assert gate.to_markdown(f[1:]).startswith("### precodec gate: passed")


def test_gate_on_a_copy_without_provenance(run_cli, assets, tmp_path):
    out = tmp_path / "o"
    run_cli("optimize", assets, "-o", out, "--target", TARGET, "-j", "1", "--no-marker")
    clean = tmp_path / "clean"
    clean.mkdir()
    for p in out.glob("*.jpg"):
        shutil.copy(p, clean / p.name)  # no manifest, no marker: judged on its bytes
    r = run_cli("gate", clean, "--target", TARGET, "--max-saving", "50%", "--json", tmp_path / "c.json")
    assert r.returncode == 0, r.stdout
    doc = json.loads((tmp_path / "c.json").read_text())
    assert all(f["data"]["possible_saving"] < 0.5 for f in doc["findings"])


def test_images_too_small_to_score_pass_unchecked(run_cli, tmp_path, make_photo):
    # a 1x1 tracking pixel cannot be scored by SSIMULACRA2: it neither fails the build nor enters a baseline
    d = tmp_path / "web"
    d.mkdir()
    Image.fromarray(make_photo(1, 1, seed=2)).save(d / "pixel.jpg", quality=95)
    j = tmp_path / "g.json"
    r = run_cli("gate", d, "--target", TARGET, "--json", j)
    assert r.returncode == 0, r.stdout + r.stderr
    (f,) = json.loads(j.read_text())["findings"]
    assert f["ok"] and "cannot score a 1x1 image" in f["message"] and "not checked" in f["message"]
    base = tmp_path / "base.json"
    r = run_cli("gate", d, "--target", TARGET, "--baseline", base, "--update-baseline")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(base.read_text())["files"] == {}
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(make_photo(1, 1, seed=2)).save(src / "pixel.png")
    r = run_cli("gate", d, "--target", TARGET, "--source", src, "--json", j)
    assert r.returncode == 0, r.stdout + r.stderr  # the source check crashed the gate (exit 2) on it
    (f,) = json.loads(j.read_text())["findings"]
    assert f["check"] == "source" and f["ok"] and "not checked" in f["message"]
