"""Core: package surface, targets, kill switch, model registry, atomic writes, `precodec info`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import precodec
from precodec import config, models
from precodec.errors import ModelError, OptionError, PrecodecError
from precodec.io import atomic_write
from precodec.targets import PRESETS, Target


def test_version_and_public_names():
    assert precodec.__version__.count(".") >= 2
    for name in ("optimize", "PrecodecError", "OptionError", "load_image", "Target", "Result"):
        assert hasattr(precodec, name)
    assert os.path.isfile(precodec.sample_path())


def test_import_has_no_side_effects(tmp_path):
    code = ("import sys, PIL.Image as I; before=dict(I.SAVE); import precodec, precodec.plugins; "
            "assert dict(I.SAVE)==before; assert 'torch' not in sys.modules; assert 'onnxruntime' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


@pytest.mark.parametrize("spec,metric,value", [("ssimulacra2:80", "ssimulacra2", 80), ("PSNR:40.5", "psnr", 40.5),
                                               ("ms_ssim:0.98", "ms-ssim", 0.98), ("high", "ssimulacra2", 80)])
def test_target_parse(spec, metric, value):
    t = Target.parse(spec)
    assert (t.metric, t.value) == (metric, value)
    assert t.met(value) and not t.met(value - 0.01)


@pytest.mark.parametrize("spec", ["ssimulacra2", "foo:3", "ssim:2", "psnr:abc", "ssimulacra2:nan", 80])
def test_target_rejects(spec):
    with pytest.raises(OptionError):
        Target.parse(spec)


def test_presets_documented():
    doc = precodec.targets.__doc__
    for name, (_, v) in PRESETS.items():
        assert f"``{name}``" in doc and f"{v:g}" in doc


def test_kill_switch(monkeypatch):
    monkeypatch.delenv(config.KILL_SWITCH_ENV, raising=False)
    assert not config.learned_disabled()
    for v in ("1", "true", "YES", "on"):
        monkeypatch.setenv(config.KILL_SWITCH_ENV, v)
        assert config.learned_disabled()
    monkeypatch.setenv(config.KILL_SWITCH_ENV, "0")
    assert not config.learned_disabled()


def test_model_registry_verifies_sha(tmp_path, monkeypatch):
    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    (tmp_path / "m.json").write_text(json.dumps({"name": "m", "version": "1", "file": "m.onnx",
                                                 "sha256": models.sha256_file(tmp_path / "m.onnx")}))
    monkeypatch.setattr(models, "MODEL_DIR", tmp_path)
    models.manifest.cache_clear()
    try:
        assert models.list_models() == ["m"]
        assert models.model_path("m").name == "m.onnx"
        (tmp_path / "m.onnx").write_bytes(b"tampered")
        with pytest.raises(ModelError, match="does not match"):
            models.model_path("m")
        with pytest.raises(ModelError, match="no model called"):
            models.manifest("nope")
    finally:
        models.manifest.cache_clear()


def test_shipped_models_match_their_manifests():
    for name in models.list_models():
        assert models.model_path(name).is_file()  # raises on SHA-256 mismatch


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"old")
    os.chmod(p, 0o600)
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new" and (os.stat(p).st_mode & 0o777) == 0o600
    assert [f.name for f in tmp_path.iterdir()] == ["a.bin"]


def test_cli_version_and_info(run_cli):
    _cli = run_cli
    r = _cli("--version")
    assert r.returncode == 0 and precodec.__version__ in r.stdout
    r = _cli("info", "--json", env={"PRECODEC_DISABLE": "1"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["kill_switch"]["on"] is True
    assert {e["name"] for e in info["encoders"]} >= {"jpeg", "avif", "zstd"}
    r = _cli("info")
    assert r.returncode == 0 and "kill switch PRECODEC_DISABLE: off" in r.stdout


def test_cli_no_command_is_usage_error(run_cli):
    assert run_cli().returncode == 2


def test_error_base():
    assert issubclass(OptionError, PrecodecError)
