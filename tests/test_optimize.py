"""precodec.optimize: targets met and verified, decision record, fallbacks, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import precodec
from precodec.errors import OptionError, PrecodecError, TargetUnreachableError
from precodec.metrics.ssimulacra2 import ssimulacra2

SAMPLE = Path(__file__).resolve().parents[1] / "precodec" / "data" / "sample.png"


def _sample() -> np.ndarray:
    from PIL import Image

    with Image.open(SAMPLE) as im:
        return np.asarray(im.convert("RGB"))[:128, :192].copy()


def _decoded(r) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB"))


@pytest.mark.parametrize("value", [60, 80, 90])
def test_target_met_and_verified(value):
    img = _sample()
    before = img.copy()
    r = precodec.optimize(img, format="jpeg", target=f"ssimulacra2:{value}")
    np.testing.assert_array_equal(img, before)  # caller's image untouched
    assert r.record.target_met is True
    assert r.quality["ssimulacra2"] >= value
    # the reported score is a real measurement of the returned bytes
    assert abs(ssimulacra2(img, _decoded(r)) - r.quality["ssimulacra2"]) < 1e-6
    assert r.data[:2] == b"\xff\xd8"


def test_decision_record_contents():
    r = precodec.optimize(_sample(), format="jpeg", target="ssimulacra2:75")
    rec = r.record
    assert rec.learned and not rec.fallback and rec.strategy == "predict"
    assert {"config", "quality", "score", "bytes", "plan", "steps"} <= set(rec.predicted)
    assert rec.applied["quality"] == r.params["quality"] and rec.applied["config"] == rec.config
    assert rec.measured == r.quality and rec.bytes_out == r.size
    assert rec.encodes == len(rec.candidates) >= 1 and 1 <= rec.metric_runs <= rec.encodes
    assert len(rec.features) > 20 and "features" in rec.time_ms and "total" in rec.time_ms
    assert rec.reason and "predictor-jpeg" in rec.versions["models"]
    assert '"strategy": "predict"' in rec.to_json()


def test_kill_switch_falls_back_to_bisection(monkeypatch):
    monkeypatch.setenv("PRECODEC_DISABLE", "1")
    r = precodec.optimize(_sample(), format="jpeg", target="ssimulacra2:75")
    rec = r.record
    assert not rec.learned and rec.fallback and rec.strategy == "bisect"
    assert "PRECODEC_DISABLE" in rec.reason and rec.predicted == {} and rec.features == {}
    assert r.quality["ssimulacra2"] >= 75 and rec.config == "jpeg:420"
    assert rec.encodes >= 5  # a real bisection


def test_learned_not_larger_than_plain_with_compare():
    img = _sample()
    r = precodec.optimize(img, format="jpeg", target="ssimulacra2:80", compare=True)
    plain = precodec.optimize(img, format="jpeg", target="ssimulacra2:80", strategy="bisect")
    assert r.record.compare["plain"]["bytes"] == plain.size
    assert r.size <= plain.size and r.quality["ssimulacra2"] >= 80


def test_out_of_distribution_content_falls_back():
    img = np.full((96, 128, 3), 255, np.uint8)
    img[::12, :] = 0
    img[:, ::16] = 0
    r = precodec.optimize(img, format="jpeg", target="ssimulacra2:80")
    assert r.record.fallback and r.record.strategy == "bisect" and r.record.ood
    assert "unlike the training data" in r.record.reason
    assert r.quality["ssimulacra2"] >= 80
    # no 4:2:0 guess for it: full-resolution chroma on the strongest encoder the space allows
    from precodec.pipeline import OOD_CONFIGS

    assert r.record.config in OOD_CONFIGS["jpeg"] and r.record.config != "jpeg:420"
    assert any("full-resolution chroma" in n for n in r.record.notes)
    # a space without 4:4:4 keeps the usual setting
    r420 = precodec.optimize(img, format="jpeg", target="ssimulacra2:80", params={"subsampling": "4:2:0"})
    assert r420.record.config.endswith(":420") and r420.record.ood


def test_format_choice_returns_smallest_allowed():
    img = _sample()
    r = precodec.optimize(img, format="auto", target="ssimulacra2:75")
    assert set(r.record.space) == {"jpeg", "avif"} and r.format in ("jpeg", "avif")
    assert r.quality["ssimulacra2"] >= 75
    one = [precodec.optimize(img, format=f, target="ssimulacra2:75") for f in ("jpeg", "avif")]
    assert r.size <= max(o.size for o in one)
    # a decode budget nothing meets still gives a result, and says so
    slow = precodec.optimize(img, format=("jpeg", "avif"), target="ssimulacra2:75", max_decode_ms=1e-6)
    assert slow.quality["ssimulacra2"] >= 75 and any("decode" in n for n in slow.record.notes)


def test_fixed_params_restrict_the_space():
    r = precodec.optimize(_sample(), format="jpeg", target="ssimulacra2:80", params={"subsampling": "4:4:4"})
    assert r.params["subsampling"] == "4:4:4" and r.quality["ssimulacra2"] >= 80
    r = precodec.optimize(_sample(), format="jpeg", backend="jpeg", target="ssimulacra2:80")
    assert r.record.backend == "jpeg" and all(c.startswith("jpeg:") for c in r.record.space["jpeg"])


def test_max_bytes():
    img = _sample()
    free = precodec.optimize(img, format="jpeg", target="ssimulacra2:90")
    cap = free.size // 2
    r = precodec.optimize(img, format="jpeg", target="ssimulacra2:90", max_bytes=cap)
    assert r.size <= cap and r.record.target_met is False and "max_bytes" in r.record.reason
    r = precodec.optimize(img, format="jpeg", target=None, max_bytes=cap)
    assert r.size <= cap and r.record.strategy == "bytes-cap"
    with pytest.raises(TargetUnreachableError):
        precodec.optimize(img, format="jpeg", target="ssimulacra2:90", max_bytes=100)


def test_unreachable_target_reported():
    r = precodec.optimize(_sample(), format="jpeg", backend="jpegli", target="ssimulacra2:99.5")
    assert r.record.target_met is False and "unreachable" in r.record.reason


def test_fixed_parameters_without_target():
    r = precodec.optimize(_sample(), format="jpeg", target=None, params={"quality": 50})
    assert r.params["quality"] == 50 and r.record.encodes == 1 and r.record.strategy == "fixed"


@pytest.mark.parametrize("kwargs", [
    {"target": "ssimulacra2:80", "params": {"quality": 80}},
    {"compare": True, "strategy": "bisect"},
    {"format": "webp"},
    {"format": "jpeg", "backend": "avif"},
    {"strategy": "guess"},
    {"max_bytes": 0},
    {"max_bytes": True},
    {"max_decode_ms": -1},
    {"calibration": "on"},
    {"params": {"speed": 3}},
    {"params": {"subsampling": "4:1:1"}},
])
def test_bad_options_raise_option_error(kwargs):
    with pytest.raises(OptionError) as ei:
        precodec.optimize(_sample(), **kwargs)
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, PrecodecError)


@pytest.mark.parametrize("target", ["ssimulacra2:abc", "foo:3", "ssimulacra2:150", "ssimulacra2", 42, "psnr:-1"])
def test_bad_targets_rejected(target):
    with pytest.raises(OptionError):
        precodec.optimize(_sample(), target=target)


def test_fallback_escalates_to_444_when_420_cannot_reach(monkeypatch):
    monkeypatch.setenv("PRECODEC_DISABLE", "1")  # the plain path (an ood image would start at 4:4:4 anyway)
    img = np.full((96, 128, 3), 255, np.uint8)
    img[::6, :] = (255, 0, 0)
    img[:, ::8] = (0, 0, 255)
    r = precodec.optimize(img, format="jpeg", target="ssimulacra2:85")
    assert r.record.fallback and r.record.config == "jpeg:444" and r.record.target_met
    assert any("cannot reach" in n for n in r.record.notes)
    plain = precodec.optimize(img, format="jpeg", target="ssimulacra2:85", strategy="bisect")
    assert plain.record.target_met is False  # the usual 4:2:0 setting alone cannot
