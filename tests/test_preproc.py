"""Tests of precodec.preproc: noise estimate, content guard, denoiser, fidelity guard, modes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from precodec import models
from precodec.errors import ModelError, OptionError, PrecodecError
from precodec.preproc import AUTO_THRESHOLD, preprocess
from precodec.preproc.content import classify
from precodec.preproc.denoise import denoise_array
from precodec.preproc.fidelity import check_fidelity
from precodec.preproc.noise import estimate_noise
from precodec.record import DecisionRecord


def _photo(h: int = 192, w: int = 256, seed: int = 0) -> np.ndarray:
    """Photo-like test image: smooth colour field + fine texture, no exact flats."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(30, 220, (h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
    import cv2

    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    tex = 12 * np.sin(xx / 3.0) * np.sin(yy / 5.0)
    return np.clip(field + tex[..., None], 0, 255).astype(np.uint8)


def _noisy(a: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8)


def _schematic(h: int = 200, w: int = 300) -> np.ndarray:
    a = np.full((h, w, 3), 255, np.uint8)
    a[50:52, 20:280] = 0
    a[50:150, 150:152] = 0
    a[148:150, 40:200] = (0, 0, 200)
    return a


# ---------------------------------------------------------------- noise estimate

@pytest.mark.parametrize("sigma", [3.0, 8.0, 15.0])
def test_noise_estimate_tracks_the_level(sigma):
    est = estimate_noise(_noisy(_photo(), sigma))
    assert abs(est.sigma - sigma) < 0.25 * sigma + 1.0
    assert len(est.rgb) == 3 and len(est.ycc) == 3


def test_noise_estimate_sees_chroma_noise_per_channel():
    a = _photo().astype(np.float32)
    rng = np.random.default_rng(3)
    a[..., 2] += rng.normal(0, 12, a.shape[:2])  # noise in blue only
    est = estimate_noise(np.clip(a, 0, 255).astype(np.uint8))
    assert est.rgb[2] > 3 * max(est.rgb[0], est.rgb[1])
    assert max(est.ycc[1], est.ycc[2]) > est.ycc[0]


def test_noise_estimate_clean_and_grey_inputs():
    assert estimate_noise(np.full((40, 40), 7, np.uint8)).sigma == 0.0
    assert estimate_noise(_photo()).sigma < 3.0
    with pytest.raises(OptionError):
        estimate_noise(np.zeros((8, 8, 3), np.float32))


# ---------------------------------------------------------------- content guard

def test_content_guard_classes():
    assert classify(_photo()).label == "photo"
    assert classify(_noisy(_photo(), 10)).label == "photo"
    assert classify(_schematic()).label in ("synthetic", "grey")
    art = np.kron(np.random.default_rng(2).integers(0, 6, (12, 16, 1)) * 40, np.ones((16, 16, 1)))
    art = np.concatenate([art, 255 - art, art // 2], axis=2).astype(np.uint8)  # pixel-art-like blocks
    assert classify(art).label == "synthetic"
    assert classify(_photo()[..., 1]).label == "grey"
    grey3 = np.repeat(_photo()[..., :1], 3, axis=2)
    assert classify(grey3).label == "grey"
    # fundus-like: red-orange disc in a black mask
    f = np.zeros((200, 200, 3), np.uint8)
    yy, xx = np.mgrid[0:200, 0:200]
    disc = (yy - 100) ** 2 + (xx - 100) ** 2 < 85 ** 2
    rng = np.random.default_rng(0)
    f[disc] = np.stack([rng.integers(180, 230, disc.sum()), rng.integers(60, 110, disc.sum()),
                        rng.integers(20, 50, disc.sum())], 1)
    assert classify(f).label == "medical"
    # stained-slide-like: brown and blue-violet cells on a pale background, no shadows
    slide = np.full((256, 256, 3), (232, 230, 236), np.uint8)
    for i, (cy, cx) in enumerate(rng.integers(10, 246, (120, 2))):
        colour = (150, 95, 45) if i % 3 else (110, 120, 190)
        slide[max(0, cy - 7):cy + 7, max(0, cx - 7):cx + 7] = colour
    slide = np.clip(slide + rng.normal(0, 4, slide.shape), 0, 255).astype(np.uint8)
    c = classify(slide)
    assert c.label == "medical" and "stain" in c.reason, c
    # the same scene with shadows (dark pixels) is not a slide
    shadowed = slide.copy()
    shadowed[:40] //= 6
    assert classify(shadowed).label == "photo"


# ---------------------------------------------------------------- model + inference

def test_model_is_pinned_by_sha256(tmp_path, monkeypatch):
    m = models.manifest("denoiser")
    assert m["sha256"] == models.sha256_file(models.model_path("denoiser"))
    assert m["training"]["steps"] > 0 and "held_out" in m
    # a swapped file is refused
    bad = tmp_path / "denoiser.onnx"
    bad.write_bytes(b"not a model")
    (tmp_path / "denoiser.json").write_text(models.MODEL_DIR.joinpath("denoiser.json").read_text())
    monkeypatch.setattr(models, "MODEL_DIR", tmp_path)
    models.manifest.cache_clear()
    try:
        with pytest.raises(ModelError):
            models.model_path("denoiser")
    finally:
        models.manifest.cache_clear()


def test_denoiser_removes_noise_and_keeps_structure():
    clean = _photo()
    noisy = _noisy(clean, 12)
    keep = noisy.copy()
    out = denoise_array(noisy, sigma=estimate_noise(noisy).rgb, threads=1)
    assert np.array_equal(noisy, keep)  # input untouched
    err_in = np.abs(noisy.astype(float) - clean).mean()
    err_out = np.abs(out.astype(float) - clean).mean()
    assert err_out < 0.85 * err_in


def test_tiling_matches_one_pass_and_handles_odd_sizes():
    noisy = _noisy(_photo(130, 171), 10)  # odd width, several tiles
    one = denoise_array(noisy, sigma=(10, 10, 10), tile=512, threads=1).astype(int)
    tiled = denoise_array(noisy, sigma=(10, 10, 10), tile=48, threads=1).astype(int)
    assert one.shape == noisy.shape
    assert np.abs(one - tiled).max() <= 1


def test_runtime_follows_the_manifest_phase_layout():
    """denoise_array's numpy shuffles against a plain reading of the manifest's layout, pixel by pixel."""
    import onnxruntime as ort

    man = models.manifest("denoiser")
    assert man["layout"] == "phases-16" and set(man["inputs"]) == {"z"}
    noisy = _noisy(_photo(48, 64), 10)
    sig = (6.0, 10.0, 14.0)
    z = np.zeros((1, 16, 24, 32), np.float32)
    for c in range(3):
        for i in range(2):
            for j in range(2):
                z[0, 4 * c + 2 * i + j] = noisy[i::2, j::2, c] / np.float32(255)
        z[0, 12 + c] = sig[c] / 25.0
    sess = ort.InferenceSession(str(models.model_path("denoiser")), providers=["CPUExecutionProvider"])
    noise = sess.run(None, {"z": z})[0][0]
    assert np.all(noise[12:] == 0)
    want = np.zeros(noisy.shape, np.float64)
    for c in range(3):
        for i in range(2):
            for j in range(2):
                want[i::2, j::2, c] = noisy[i::2, j::2, c] - 255.0 * noise[4 * c + 2 * i + j]
    want = np.clip(np.floor(want + 0.5), 0, 255)
    got = denoise_array(noisy, sigma=sig, threads=1, precision="fp32")
    assert np.abs(got - want).max() <= 1 and np.mean(got != want) < 0.01
    assert np.abs(got.astype(int) - noisy).mean() > 2  # it did denoise


def test_model_of_another_layout_is_refused(monkeypatch):
    real = models.manifest
    monkeypatch.setattr(models, "manifest", lambda name: {**real(name), "layout": "rgb-planar"})
    with pytest.raises(ModelError, match="rgb-planar.*phases-16"):
        denoise_array(np.zeros((32, 32, 3), np.uint8), sigma=(5, 5, 5))


@pytest.mark.parametrize("kw", [{"tile": 31}, {"tile": 50}, {"margin": 3}, {"margin": 6},
                                {"sigma": (-1, 0, 0)}, {"threads": 0},
                                {"precision": "fp16"}])
def test_denoiser_rejects_bad_options(kw):
    args = {"sigma": (5, 5, 5), **kw}
    with pytest.raises(OptionError):
        denoise_array(np.zeros((32, 32, 3), np.uint8), **args)


def test_int8_build_runs():
    noisy = _noisy(_photo(64, 64), 10)
    out = denoise_array(noisy, sigma=(10, 10, 10), precision="int8", threads=1)
    assert out.shape == noisy.shape and not np.array_equal(out, noisy)


# ---------------------------------------------------------------- fidelity guard

def test_fidelity_guard_accepts_noise_and_rejects_structure_loss():
    clean = _photo()
    noisy = _noisy(clean, 10)
    assert check_fidelity(noisy, clean, sigma=10).passed
    erased = clean.copy()
    erased[60:63, 20:200] = erased[57:60, 20:200]  # a feature "denoised" away
    lined = noisy.copy()
    lined[60:63, 20:200] = 0
    rep = check_fidelity(lined, erased, sigma=10)
    assert not rep.passed and "residual" in rep.reason
    shifted = np.clip(clean.astype(int) + (0, 0, 12), 0, 255).astype(np.uint8)  # colour cast
    assert not check_fidelity(noisy, shifted, sigma=10).passed


# ---------------------------------------------------------------- modes

def test_off_is_a_no_op_and_bad_options_raise():
    a = _noisy(_photo(), 10)
    im = Image.fromarray(a)
    p = preprocess(im, a, denoise="off")
    assert p.image is im and p.reference is a and not p.applied
    for kw in ({"denoise": "on"}, {"content": "maybe"}, {"strength": 0}, {"strength": True}):
        with pytest.raises(ValueError):
            preprocess(im, a, **{"denoise": "auto", **kw})
    with pytest.raises(PrecodecError):
        preprocess(im, a, denoise="fast")


def test_auto_leaves_clean_photos_alone():
    a = _photo()
    im = Image.fromarray(a)
    rec = DecisionRecord()
    p = preprocess(im, a, denoise="auto", record=rec)
    assert p.image is im and not p.applied and p.reference_name == "original"
    assert rec.preprocessing["ran"] is False and "threshold" in rec.preprocessing["reason"]
    assert rec.features["content"]["label"] == "photo" and rec.features["noise"]["sigma"] < AUTO_THRESHOLD


def test_auto_denoises_noisy_photos_and_records_it():
    a = _noisy(_photo(), 12)
    before = a.copy()
    rec = DecisionRecord()
    p = preprocess(Image.fromarray(a), a, denoise="auto", record=rec, threads=1)
    assert np.array_equal(a, before)
    assert p.applied and p.reference_name == "denoised"
    assert np.array_equal(np.asarray(p.image), p.reference)
    pp = rec.preprocessing
    assert pp["ran"] and pp["model"] == "denoiser_int8" and pp["precision"] == "int8" and pp["fidelity"]["passed"]
    assert pp["strength"] == 1.0 and len(pp["sigma_in"]) == 3
    assert pp["bytes_saved_proxy"]["saved"] > 0
    assert not rec.fallback
    rec.to_json()


def test_content_guard_blocks_non_photos_unless_forced():
    s = _noisy(_schematic(), 12)
    rec = DecisionRecord()
    p = preprocess(Image.fromarray(s), s, denoise="clean", record=rec)
    assert not p.applied and "content guard" in rec.preprocessing["reason"]
    g = _noisy(_photo()[..., 0], 12)
    p = preprocess(Image.fromarray(g), g, denoise="clean")
    assert not p.applied
    # forced the other way: a noisy photo declared non-photo is left alone
    a = _noisy(_photo(), 12)
    assert not preprocess(Image.fromarray(a), a, denoise="clean", content="other").applied


def test_clean_mode_and_kill_switch(monkeypatch):
    a = _noisy(_photo(), 5)
    p = preprocess(Image.fromarray(a), a, denoise="clean", threads=1)
    assert p.applied and p.reference_name == "denoised"
    monkeypatch.setenv("PRECODEC_DISABLE", "1")
    rec = DecisionRecord()
    p = preprocess(Image.fromarray(a), a, denoise="clean", record=rec)
    assert not p.applied and "kill switch" in rec.preprocessing["reason"]


def test_fidelity_fallback_is_recorded(monkeypatch):
    import precodec.preproc.denoise as dn

    a = _noisy(_photo(), 12)
    monkeypatch.setattr(dn, "denoise_array", lambda x, **k: np.zeros_like(x))  # a broken model
    rec = DecisionRecord()
    p = preprocess(Image.fromarray(a), a, denoise="clean", record=rec)
    assert not p.applied and rec.fallback and "fidelity" in rec.reason


def test_rgba_keeps_alpha():
    a = _noisy(_photo(), 12)
    alpha = np.full(a.shape[:2], 200, np.uint8)
    im = Image.fromarray(np.dstack([a, alpha]), "RGBA")
    p = preprocess(im, a, denoise="clean", threads=1)
    assert p.applied and p.image.mode == "RGBA"
    assert np.array_equal(np.asarray(p.image)[..., 3], alpha)


def test_pipeline_auto_is_byte_identical_on_clean_input():
    import precodec

    a = _photo()
    off = precodec.optimize(a, format="jpeg", target=None, params={"quality": 80})
    auto = precodec.optimize(a, format="jpeg", target=None, params={"quality": 80}, denoise="auto")
    assert off.data == auto.data
    assert auto.record.reference == "original"
    noisy = _noisy(a, 12)
    r = precodec.optimize(noisy, format="jpeg", target=None, params={"quality": 80}, denoise="auto")
    plain = precodec.optimize(noisy, format="jpeg", target=None, params={"quality": 80})
    assert r.record.reference == "denoised" and r.record.preprocessing["ran"]
    assert len(r.data) < len(plain.data)
    Image.open(io.BytesIO(r.data)).load()  # a plain JPEG


def test_pipeline_passes_denoise_options_to_force_the_guard():
    import precodec

    s = _noisy(_schematic(), 12)
    kw = dict(format="jpeg", target=None, params={"quality": 80})
    r = precodec.optimize(s, denoise="clean", **kw)
    assert not r.record.preprocessing["ran"] and r.record.features["content"]["label"] != "photo"
    forced = precodec.optimize(s, denoise="clean", denoise_options={"content": "photo", "threads": 1}, **kw)
    pp = forced.record.preprocessing
    assert pp["content"] == "photo" and (pp["ran"] or forced.record.fallback)
