"""``precodec zstd`` command line: files, standard input/output, errors, train/drift/inspect."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import sys

import numpy as np
import pytest

from precodec.cli import main

ZSTD = shutil.which("zstd")
needs_zstd = pytest.mark.skipif(ZSTD is None, reason="the stock `zstd` command is not installed "
                                                     "(Debian: apt-get install zstd)")


def lines(n: int, seed: int = 0, kind: str = "log") -> bytes:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if kind == "log":
            out.append(b"2024-05-01 10:%02d:%02d INFO dfs.DataNode: Receiving block blk_%d src: /10.250.%d.%d:%d\n"
                       % (i // 60 % 60, i % 60, rng.integers(1 << 40), rng.integers(256), rng.integers(256),
                          rng.integers(40000, 60000)))
        else:
            out.append(b'{"event":"cache_stats","node":"redis-%d","hits":%d,"misses":%d,"ok":true}\n'
                       % (rng.integers(6), rng.integers(10**6), rng.integers(10**4)))
    return b"".join(out)


@pytest.fixture()
def logfile(tmp_path):
    p = tmp_path / "app.log"
    p.write_bytes(lines(3000))
    return p


def test_compress_decompress_files_and_refuse_overwrite(tmp_path, logfile, capsys):
    assert main(["zstd", "compress", str(logfile), "-l", "9", "-q"]) == 0
    z = tmp_path / "app.log.zst"
    assert z.exists() and z.stat().st_size < logfile.stat().st_size
    assert main(["zstd", "compress", str(logfile), "-q"]) == 2  # exists, no -f
    assert "exists" in capsys.readouterr().err
    out = tmp_path / "back.log"
    assert main(["zstd", "decompress", str(z), "-o", str(out), "-q"]) == 0
    assert out.read_bytes() == logfile.read_bytes()
    assert main(["zstd", "compress", str(logfile), "-f", "-q", "--budget", "ratio>=3", "--report",
                 str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep[0]["mode"] == "budget" and rep[0]["ratio"] >= 3 and rep[0]["source"] == str(logfile)


def test_bad_input_one_line_exit_2(tmp_path, logfile, capsys):
    bad = tmp_path / "x.zst"
    bad.write_bytes(b"definitely not zstd")
    assert main(["zstd", "decompress", str(bad), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("precodec: error: not a Zstd stream")
    assert not (tmp_path / "x").exists()  # nothing half-written
    assert main(["zstd", "compress", str(logfile), "--budget", "warp-speed"]) == 2
    assert main(["zstd", "compress", str(logfile), "--budget", "max-ratio", "--records", "lines"]) == 2
    assert main(["zstd", "decompress", str(tmp_path / "missing.zst")]) == 2
    assert main(["zstd"]) == 2


def test_record_mode_writes_dictionary_and_names_it_when_missing(tmp_path, capsys):
    src = tmp_path / "t.jsonl"
    src.write_bytes(lines(4000, kind="json"))
    assert main(["zstd", "compress", str(src), "--records", "lines", "--json", "-q"]) == 0
    rec = json.loads(capsys.readouterr().out)
    d = tmp_path / "t.jsonl.zst.dict"
    assert rec["mode"] == "records" and rec["records"] == 4000 and rec["dictionary_file"] == str(d)
    assert d.exists()
    z = tmp_path / "t.jsonl.zst"
    assert main(["zstd", "decompress", str(z), "-o", str(tmp_path / "o")]) == 2
    assert f"dictionary id {rec['dict_id']}" in capsys.readouterr().err
    assert main(["zstd", "decompress", str(z), "-o", str(tmp_path / "o"), "--dict", str(d), "-q"]) == 0
    assert (tmp_path / "o").read_bytes() == src.read_bytes()
    assert main(["zstd", "inspect", str(z), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 4000 and info["dict_id"] == rec["dict_id"] and info["precodec"]["mode"] == "records"
    assert not info["checksum"]  # 4 bytes per record saved by default in record mode


def test_train_drift_inspect(tmp_path, capsys):
    a = tmp_path / "a.log"
    a.write_bytes(lines(3000))
    b = tmp_path / "b.jsonl"
    b.write_bytes(lines(3000, kind="json"))
    d = tmp_path / "a.dict"
    assert main(["zstd", "train", str(a), "-o", str(d), "--sizes", "2KiB,8KiB", "--levels", "1,3", "--json"]) == 0
    tr = json.loads(capsys.readouterr().out)
    assert tr["size"] == d.stat().st_size and tr["level"] in (1, 3)
    assert main(["zstd", "drift", "--dict", str(d), str(a), "--json", "-q"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert not same["retrain"]
    fresh = tmp_path / "fresh.dict"
    assert main(["zstd", "drift", "--dict", str(d), str(b), "-o", str(fresh), "--json", "-q"]) == 1
    drift = json.loads(capsys.readouterr().out)
    assert drift["retrain"] and drift["loss"] > 0.05 and fresh.exists()
    assert main(["zstd", "inspect", str(d)]) == 0
    assert "zstd dictionary" in capsys.readouterr().out


def test_typed_mode_is_opt_in_and_labelled(tmp_path, capsys):
    raw = tmp_path / "c.bin"
    data = np.cumsum(np.random.default_rng(0).poisson(4, 100000)).astype("<u4").tobytes()
    raw.write_bytes(data)
    assert main(["zstd", "compress", str(raw), "--typed", "<u4"]) == 0
    err = capsys.readouterr().err
    assert "stock zstd cannot read" in err
    out = tmp_path / "c.bin.pczt"
    assert out.read_bytes()[:4] == b"PCZT"
    assert main(["zstd", "decompress", str(out), "-q"]) == 2  # c.bin exists: refused without -f
    assert main(["zstd", "decompress", str(out), "-q", "-o", str(tmp_path / "back.bin")]) == 0
    assert (tmp_path / "back.bin").read_bytes() == data
    assert main(["zstd", "inspect", str(out)]) == 0
    assert "stock_zstd_readable: False" in capsys.readouterr().out


def _run(args, data: bytes) -> subprocess.CompletedProcess:
    # cwd outside the repository: the source tree on sys.path would shadow the installed package
    return subprocess.run([sys.executable, "-m", "precodec", *args], input=data, capture_output=True, timeout=120,
                          cwd=tempfile.gettempdir())


@needs_zstd
def test_stdin_stdout_pipeline_and_stock_zstd(tmp_path):
    data = lines(5000)
    r = _run(["zstd", "compress", "--budget", "compress>=20MB/s"], data)
    assert r.returncode == 0, r.stderr.decode()
    s = subprocess.run([ZSTD, "-d", "-c", "-q"], input=r.stdout, capture_output=True, timeout=60)
    assert s.returncode == 0 and s.stdout == data
    back = _run(["zstd", "decompress"], r.stdout)
    assert back.returncode == 0 and back.stdout == data
    d = tmp_path / "s.dict"
    rec = _run(["zstd", "compress", "--records", "lines", "--dict-out", str(d)], data)
    assert rec.returncode == 0, rec.stderr.decode()
    s = subprocess.run([ZSTD, "-d", "-c", "-q", "-D", str(d)], input=rec.stdout, capture_output=True, timeout=60)
    assert s.returncode == 0 and s.stdout == data
    bad = _run(["zstd", "decompress"], r.stdout[: len(r.stdout) // 2])
    assert bad.returncode == 2 and b"truncated" in bad.stderr
