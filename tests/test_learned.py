"""The opt-in learned codec: round trips, container checks, exact probability-model selection, fuzzing."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("constriction")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from precodec import learned  # noqa: E402
from precodec.errors import (  # noqa: E402
    BitstreamError,
    BitstreamMismatchError,
    ModelError,
    OptionError,
    PrecodecError,
    TargetUnreachableError,
    UnsupportedModeError,
)
from precodec.learned import container  # noqa: E402

_OK, _WHY = learned.available()
if not _OK:  # the model files are shipped with the package; a partial checkout may lack them
    pytest.skip(f"learned codec unavailable: {_WHY}", allow_module_level=True)



def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 80 * np.sin(x / 9.0) * np.cos(y / 13.0), 128 + 70 * np.cos(x / 17.0) * np.sin(y / 7.0),
                     110 + 60 * np.sin((x + y) / 11.0)], axis=2)
    base[h // 3 : h // 2, w // 4 : w // 2] = (200, 40, 60)  # an edge
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


PHOTO = _photo(40, 56, seed=3)


def _psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def _recrc(blob: bytes) -> bytes:
    body = blob[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.fixture(scope="module")
def stream() -> bytes:
    return learned.encode(PHOTO, rate=2)


# ---- round trips --------------------------------------------------------


def test_round_trip_rgb_and_rate_points_order_size_and_quality():
    sizes, psnrs = [], []
    for r in (0, 5):
        data = learned.encode(PHOTO, rate=r)
        out = learned.decode(data)
        assert out.mode == "RGB" and out.size == (56, 40)
        sizes.append(len(data))
        psnrs.append(_psnr(PHOTO, np.asarray(out)))
    assert sizes[1] > sizes[0]
    assert psnrs[1] > psnrs[0]
    assert psnrs[1] > 24


def test_round_trip_grey_pil_and_odd_sizes():
    im = Image.fromarray(PHOTO[:17, :5, 1], "L")
    out = learned.decode(learned.encode(im, rate=4))
    assert out.mode == "L" and out.size == (5, 17)


def test_caller_image_not_mutated():
    a = PHOTO.copy()
    im = Image.fromarray(a)
    learned.encode(im, rate=1)
    learned.encode(a, rate=1)
    assert np.array_equal(a, PHOTO) and np.array_equal(np.asarray(im), PHOTO)


def test_default_rate_and_stream_info(stream):
    info = learned.stream_info(stream)
    assert info["model"] == learned.DEFAULT_MODEL and info["rate"] == 2
    assert (info["width"], info["height"], info["mode"]) == (56, 40, "RGB")
    assert learned.stream_info(learned.encode(PHOTO))["rate"] == learned.DEFAULT_RATE


@pytest.mark.parametrize("rate", [-1, 6, 2.0, "3", True])
def test_bad_rate_rejected(rate):
    with pytest.raises(OptionError, match="rate"):
        learned.encode(PHOTO, rate=rate)


def test_rate_and_target_are_exclusive():
    with pytest.raises(OptionError, match="not both"):
        learned.encode(PHOTO, rate=1, target=30.0)


def test_alpha_and_bad_modes_refused():
    with pytest.raises(UnsupportedModeError, match="alpha"):
        learned.encode(Image.new("RGBA", (8, 8)))
    with pytest.raises(UnsupportedModeError):
        learned.encode(Image.new("I;16", (8, 8)))
    with pytest.raises(OptionError):
        learned.encode("not an image")


def test_tiled_transforms_match_whole_frame(monkeypatch):
    big = _photo(200, 264, seed=5)
    whole = learned.encode(big, rate=3)
    monkeypatch.setattr(learned, "TILE", 5)  # force tiling: 13x17 latents -> 3x4 tiles
    tiled = learned.encode(big, rate=3)
    a, b = np.asarray(learned.decode(whole), np.int16), np.asarray(learned.decode(tiled), np.int16)
    assert abs(len(whole) - len(tiled)) <= 16
    assert np.abs(a - b).max() <= 2 and np.mean(a != b) < 0.01
    monkeypatch.setattr(learned, "TILE", 64)
    assert np.abs(np.asarray(learned.decode(tiled), np.int16) - b).max() <= 2


# ---- target quality -----------------------------------------------------


def test_target_picks_smallest_rate_point_that_reaches_it():
    res = learned.encode_to_target(PHOTO, target=22.0, metric="psnr")
    assert res.score >= 22.0
    assert all(s < 22.0 for r, s in res.tried.items() if r < res.rate)
    assert learned.decode(res.data).size == (56, 40)


def test_unreachable_target():
    with pytest.raises(TargetUnreachableError, match="not reached"):
        learned.encode_to_target(PHOTO, target=99.0, metric="psnr")
    res = learned.encode_to_target(PHOTO, target=99.0, metric="psnr", strict=False)
    assert res.rate == learned.RATE_POINTS - 1
    with pytest.raises(OptionError):
        learned.encode_to_target(PHOTO, target=50.0, metric="nope")


# ---- exact probability-model selection ------------------------------------


def test_hyper_synthesis_is_integer_valued_and_evaluation_independent():
    import onnxruntime as ort

    from precodec import models

    m = learned._runtime.get_model(learned.DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    z = rng.integers(-6, 7, size=(1, int(m.codec["N"]), 3, 5)).astype(np.float32)
    raw = m.hyper_synthesis_raw(z)
    assert np.array_equal(raw, np.rint(raw))
    # the same graph with every onnxruntime optimisation on and two threads: identical integers
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(str(models.model_path(f"{learned.DEFAULT_MODEL}-hyper-synthesis")), opts,
                             providers=["CPUExecutionProvider"])
    assert np.array_equal(s.run(None, {"z": z})[0], raw)


def _decode_with(stream: bytes, hook):
    h, payload = container.unpack(stream)
    m = learned._runtime.get_model(learned.DEFAULT_MODEL)
    _, y_hat, sym = learned._decode_symbols(payload, h, m, _hs_hook=hook)
    return sym, np.asarray(learned._synthesise(y_hat, h, m))


def test_perturbed_hyper_decoder_output_decodes_identically(stream):
    sym0, img0 = _decode_with(stream, None)
    rng = np.random.default_rng(1)
    for hook in (
        lambda raw: raw + rng.uniform(-0.45, 0.45, raw.shape).astype(np.float32),  # absolute, < half a unit
        lambda raw: raw * (1 + rng.uniform(-1e-5, 1e-5, raw.shape)).astype(np.float32),  # relative
    ):
        sym, img = _decode_with(stream, hook)
        assert np.array_equal(sym, sym0)
        assert np.array_equal(img, img0)
    assert np.array_equal(img0, np.asarray(learned.decode(stream)))


def test_perturbation_test_can_fail(stream):
    # a shift of a whole scale-table step must change the decode: the hook really reaches the decoder
    sym0, img0 = _decode_with(stream, None)
    M = learned._runtime.get_model(learned.DEFAULT_MODEL).M
    def shift(raw):
        raw = raw.copy()
        raw[:, M:] += 256 * 8
        raw[:, :M] += 256 * 3
        return raw
    try:
        sym, img = _decode_with(stream, shift)
    except BitstreamError:  # the shifted entropy model can no longer read the stream: it was reached too
        return
    assert not np.array_equal(sym, sym0) or not np.array_equal(img, img0)


# ---- container ----------------------------------------------------------


def test_header_layout(stream):
    assert stream[:4] == container.MAGIC and stream[4] == container.FORMAT_VERSION
    assert struct.unpack(">H", stream[5:7])[0] == {v: k for k, v in container.MODEL_IDS.items()}[learned.DEFAULT_MODEL]
    # frozen: never renumbered, never reused
    assert container.MODEL_IDS[1] == "learned-hp48-v1"
    assert container.MODEL_IDS[2] == "learned-hp48-v2"
    assert container.MODEL_IDS[3] == "learned-hp48-v3"
    assert container.MODEL_IDS[4] == "learned-hp48-v4" == learned.DEFAULT_MODEL
    assert container.MODEL_IDS[5] == "learned-hp48-v5"


# ---- models: the SSIMULACRA2-tuned default and the MSE-trained one ------------


def test_model_for_metric_and_by_name():
    assert learned.WRITE_MODELS[learned.DEFAULT_MODEL] == "ssimulacra2"
    assert learned.model_for("psnr") == "learned-hp48-v5"
    assert learned.model_for("ssimulacra2") == learned.model_for() == learned.DEFAULT_MODEL
    assert learned.model_for("psnr", "learned-hp48-v4") == "learned-hp48-v4"  # a named model wins
    for old in ("learned-hp48-v1", "learned-hp48-v3"):  # they decode, never write
        with pytest.raises(OptionError, match=f"model='{old}' is not one of"):
            learned.model_for(None, old)
    with pytest.raises(OptionError, match="'nope'"):
        learned.encode(PHOTO, rate=1, model="nope")


def test_each_model_writes_its_own_id_and_decodes():
    out = {}
    for name in learned.WRITE_MODELS:
        data = learned.encode(PHOTO, rate=3, model=name)
        assert learned.stream_info(data)["model"] == name
        out[name] = np.asarray(learned.decode(data))
        assert _psnr(out[name], PHOTO) > 24
    a, b = out.values()
    assert not np.array_equal(a, b)  # different weights, different decodes


def test_target_picks_the_model_trained_for_its_metric():
    r = learned.encode_to_target(PHOTO, target=22.0, metric="psnr")
    assert r.model == "learned-hp48-v5" and learned.stream_info(r.data)["model"] == r.model
    r = learned.encode_to_target(PHOTO, target=90.0, metric="ssimulacra2", strict=False)  # tiny noisy image
    assert r.model == learned.DEFAULT_MODEL and learned.stream_info(r.data)["model"] == r.model
    r = learned.encode_to_target(PHOTO, target=22.0, metric="psnr", model="learned-hp48-v4")
    assert learned.stream_info(r.data)["model"] == "learned-hp48-v4"


def test_optimize_and_backend_take_a_model():
    import precodec
    from precodec.plugins import get_codec

    res = precodec.optimize(PHOTO, format="learned", target=None, params={"rate": 2, "model": "learned-hp48-v5"})
    assert res.params == {"rate": 2, "model": "learned-hp48-v5"} == res.record.applied
    assert learned.stream_info(res.data)["model"] == "learned-hp48-v5"
    res = precodec.optimize(PHOTO, format="learned", target="psnr:22")
    assert res.params["model"] == "learned-hp48-v5"
    res = precodec.optimize(PHOTO, format="learned", target=None, params={"rate": 2})
    assert res.params["model"] == learned.DEFAULT_MODEL
    c = get_codec("learned")
    assert learned.stream_info(c.encode(PHOTO, {"rate": 1, "model": "learned-hp48-v5"}))["model"] == "learned-hp48-v5"
    with pytest.raises(OptionError, match="model='x' is not one of"):
        c.encode(PHOTO, {"model": "x"})


@pytest.mark.parametrize("old_id", [1, 2, 3])
def test_streams_of_older_shipped_models_still_decode(old_id):
    """Streams written by an older shipped model decode with that model's weights, not the default's."""
    yy, xx = np.mgrid[0:40, 0:56]
    rgb = np.stack([xx * 4, yy * 5, 120 + 60 * np.sin(xx / 6.0)], axis=2).clip(0, 255).astype(np.uint8)
    name = container.MODEL_IDS[old_id]
    old = learned._runtime.get_model(name)  # older models only decode; _encode_array writes with one here
    assert old.name != learned.DEFAULT_MODEL
    s_old = learned._encode_array(rgb, "RGB", 2, old)
    s_new = learned.encode(rgb, rate=2)
    new_id = {v: k for k, v in container.MODEL_IDS.items()}[learned.DEFAULT_MODEL]
    assert struct.unpack(">H", s_old[5:7])[0] == old_id and struct.unpack(">H", s_new[5:7])[0] == new_id
    assert learned.stream_info(s_old)["model"] == name
    a1, a2 = np.asarray(learned.decode(s_old)), np.asarray(learned.decode(s_new))
    assert a1.shape == a2.shape == rgb.shape
    # each decodes to something close to the input (a model mix-up gives garbage)
    for a in (a1, a2):
        assert np.abs(a.astype(int) - rgb).mean() < 12


def test_other_version_is_named(stream):
    bad = bytearray(stream)
    bad[4] = 2
    with pytest.raises(BitstreamMismatchError, match="version 2.*version 1"):
        learned.decode(_recrc(bytes(bad)))


def test_other_model_id_is_named(stream):
    bad = bytearray(stream)
    bad[5:7] = struct.pack(">H", 9)
    with pytest.raises(BitstreamMismatchError, match="model id 9.*does not ship.*learned-hp48-v1"):
        learned.decode(_recrc(bytes(bad)))


def test_other_model_digest_is_named(stream):
    bad = bytearray(stream)
    bad[7:15] = bytes(8)
    mine = stream[7:15].hex()
    with pytest.raises(BitstreamMismatchError, match=f"0000000000000000.*{mine}"):
        learned.decode(_recrc(bytes(bad)))


@pytest.mark.parametrize("cut", [0, 3, 4, 10, 29, 30, 33, -5, -1])
def test_truncated(stream, cut):
    with pytest.raises(BitstreamError):
        learned.decode(stream[:cut])


def test_trailing_bytes_and_crc(stream):
    with pytest.raises(BitstreamError, match="trailing"):
        learned.decode(stream + b"\0")
    bad = bytearray(stream)
    bad[40] ^= 1
    with pytest.raises(BitstreamError, match="CRC"):
        learned.decode(bytes(bad))


def test_huge_header_size_refused_cheaply(stream):
    bad = bytearray(stream)
    bad[15:23] = struct.pack(">II", 60000, 60000)
    with pytest.raises(BitstreamError, match="exceeds"):
        learned.decode(_recrc(bytes(bad)))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutations_fail_cleanly(stream, data):
    blob = bytearray(stream)
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "random"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        blob = bytearray(container.MAGIC + data.draw(st.binary(max_size=80)))
    try:
        out = learned.decode(bytes(blob))
    except BitstreamError:
        return
    assert isinstance(out, Image.Image)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_payload_with_valid_crc(stream, data):
    # corrupt the entropy-coded payload and fix the CRC so the range decoder itself sees garbage
    blob = bytearray(stream)
    n = struct.unpack(">I", stream[26:30])[0]
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(30, 30 + n - 1))
        blob[i] = data.draw(st.integers(0, 255))
    try:
        out = learned.decode(_recrc(bytes(blob)))
    except BitstreamError:
        return
    assert out.size == (56, 40)


def test_not_bytes():
    with pytest.raises(BitstreamError):
        learned.decode("abc")  # type: ignore[arg-type]


# ---- model pinning -----------------------------------------------------------


def test_model_sha_mismatch_is_a_model_error(monkeypatch):
    from precodec import models

    monkeypatch.setattr(models, "sha256_file", lambda p: "0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        learned._runtime.get_model(learned.DEFAULT_MODEL, threads=7)


# ---- backend and Pillow plugin ---------------------------------------------


def test_backend_registered_lazily_with_extra():
    from precodec.plugins import REGISTRY, get_codec

    assert REGISTRY["learned"].extra == "learned"
    c = get_codec("learned")
    data = c.encode(PHOTO, {"rate": 1})
    assert c.decode(data).size == (56, 40)
    with pytest.raises(OptionError):
        c.encode(PHOTO, {"rate": 9})


def test_pillow_plugin_only_when_asked(tmp_path, monkeypatch):
    from precodec.plugins import learned as plug

    plug.unregister_learned_plugin()
    assert "PRECODEC" not in Image.SAVE and ".pcl" not in Image.EXTENSION
    monkeypatch.setenv("PRECODEC_DISABLE", "1")
    assert plug.register_learned_plugin() is False
    assert "PRECODEC" not in Image.SAVE
    monkeypatch.delenv("PRECODEC_DISABLE")
    assert plug.register_learned_plugin() is True
    try:
        p = tmp_path / "a.pcl"
        Image.fromarray(PHOTO).save(p, rate=3)
        with Image.open(p) as im:
            assert im.format == "PRECODEC" and im.size == (56, 40) and im.info["rate"] == 3
            assert im.info["model"] == learned.DEFAULT_MODEL
            a = np.asarray(im.convert("RGB"))
        assert _psnr(PHOTO, a) > 20
        buf = io.BytesIO()
        Image.fromarray(PHOTO[:, :, 0]).save(buf, "PRECODEC", target=20.0, metric="psnr")
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            assert im.mode == "L" and im.info["model"] == "learned-hp48-v5"  # the model trained for PSNR
        buf = io.BytesIO()
        Image.fromarray(PHOTO).save(buf, "PRECODEC", rate=1, model="learned-hp48-v5")
        assert Image.open(io.BytesIO(buf.getvalue())).info["model"] == "learned-hp48-v5"
    finally:
        plug.unregister_learned_plugin()
    assert "PRECODEC" not in Image.SAVE and "PRECODEC" not in Image.OPEN


def test_errors_share_the_base():
    assert issubclass(BitstreamMismatchError, BitstreamError)
    assert issubclass(BitstreamError, PrecodecError)


# --------------------------------------------------------------------------- wiring into optimize() and the CLI


def test_optimize_format_learned_meets_target_and_is_opt_in(photo):
    import precodec
    from precodec import learned

    r = precodec.optimize(photo, format="learned", target="psnr:20")
    assert r.format == "learned" and r.extension == ".pcl" and r.data[:4] == b"\x89PCL"
    assert r.record.target_met and r.quality["psnr"] >= 20 and r.record.learned
    assert learned.decode(r.data).size == (photo.shape[1], photo.shape[0])
    fixed = precodec.optimize(photo, format="learned", target=None, params={"rate": 0})
    assert fixed.params == {"rate": 0, "model": learned.DEFAULT_MODEL} and fixed.record.encodes == 1
    auto = precodec.optimize(photo, format="auto", target="psnr:20")  # 'auto' never picks the learned codec
    assert auto.format in ("jpeg", "avif")


def test_optimize_format_learned_options_and_kill_switch(photo, monkeypatch):
    import precodec
    from precodec.errors import OptionError

    with pytest.raises(OptionError, match="mutually exclusive"):
        precodec.optimize(photo, format="learned", target="psnr:20", params={"rate": 1})
    with pytest.raises(OptionError, match="quality"):
        precodec.optimize(photo, format="learned", target=None, params={"quality": 1})
    with pytest.raises(OptionError, match="ms-ssim"):
        precodec.optimize(photo, format="learned", target="ms-ssim:0.9")
    monkeypatch.setenv("PRECODEC_DISABLE", "1")
    r = precodec.optimize(photo, format="learned", target="psnr:20")
    assert r.format == "jpeg" and r.record.fallback and "kill switch" in r.record.reason


def test_cli_format_learned(run_cli, tmp_path, photo):
    from PIL import Image

    from precodec import learned

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo).save(src / "a.png")
    out = tmp_path / "out"
    r = run_cli("optimize", src, "-o", out, "--format", "learned", "--target", "psnr:20", "-q")
    assert r.returncode == 0, r.stderr
    pcl = out / "a.pcl"
    assert pcl.is_file() and learned.decode(pcl.read_bytes()).size == (photo.shape[1], photo.shape[0])


def test_rdoq_moves_symbols_toward_zero_only_where_it_pays():
    half = np.array([4])
    ybits = np.array([[9.0, 6.0, 3.0, 1.0, 0.5, 1.0, 3.0, 6.0, 9.0]])  # bits of -4..4 at scale index 0
    res = np.array([0.6, -0.6, 1.55, 0.2, 2.7])
    sym = np.rint(res).astype(np.int64)
    idx = np.zeros(res.shape, np.int64)
    cheap = learned._rdoq(res, sym, idx, half, ybits, np.array(0.5))
    assert cheap.tolist() == [0, 0, 1, 0, 2]  # e.g. 0.6: 0.5 x 0.36 + 0.5 bit < 0.5 x 0.16 + 1 bit
    dear = learned._rdoq(res, sym, idx, half, ybits, np.array(1e6))  # distortion dominates: plain rounding
    assert dear.tolist() == sym.tolist()


def test_rdoq_table_fits_every_model_it_names():
    tables = learned._rdoq_tables()
    assert tables, "rdoq.json names no model"
    for name, (alpha, _) in tables.items():
        assert name in container.MODEL_IDS.values() and alpha > 0
        m = learned.get_model(name)
        w = learned._rdoq_weight(m, m.n_rates - 1)
        assert w.shape == (1, m.M, 1, 1) and np.all(w > 0)
        if name in learned.WRITE_MODELS:
            assert learned.info(name)["rdoq"] == f"alpha {alpha:g}"  # what `precodec info` shows


@pytest.mark.parametrize("model", sorted(learned.WRITE_MODELS))
def test_rdoq_streams_are_smaller_and_decode_the_same_way(model):
    img = _photo(96, 128, seed=11)
    on = learned.encode(img, rate=2, model=model)
    off = learned.encode(img, rate=2, model=model, rdoq=False)
    assert on != off and len(on) < len(off)
    # same header and same decoder: both streams parse with the one shipped model
    head = lambda d: {k: v for k, v in learned.stream_info(d).items() if k != "bytes"}  # noqa: E731
    assert head(on) == head(off)
    a, b = np.asarray(learned.decode(on)), np.asarray(learned.decode(off))
    assert _psnr(img, a) > _psnr(img, b) - 1.0


def test_rdoq_only_on_photographs():
    """RDOQ was fitted on photographs; the content guard keeps it off screenshots, schematics and grey images."""
    chart = np.full((96, 128, 3), 255, np.uint8)
    chart[::8, :] = (30, 30, 200)  # grid lines on white: 'synthetic'
    chart[40:60, 20:90] = (220, 40, 40)
    grey = _photo(96, 128, seed=5)[:, :, 1]
    for img in (chart, grey):
        for model in learned.WRITE_MODELS:
            assert learned.encode(img, rate=2, model=model) == learned.encode(img, rate=2, model=model, rdoq=False)
    m = learned.get_model(learned.DEFAULT_MODEL)
    assert learned._rdoq_applies(_photo(96, 128, seed=11), "RGB", True, m)
