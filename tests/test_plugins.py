"""Stock-encoder backends: round trips decoded by plain Pillow / zstandard, parameter spaces, registry."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zstandard
from PIL import Image

from precodec.errors import MissingDependencyError, OptionError
from precodec.intake import Metadata
from precodec.plugins import REGISTRY, PluginEntry, available_codecs, codec_info, get_codec

IMAGE_BACKENDS = [n for n in ("jpeg", "mozjpeg", "jpegli", "avif") if n in available_codecs()]


def _plain_decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))  # plain Pillow, nothing of precodec
    im.load()
    return im


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


@pytest.mark.parametrize("name", IMAGE_BACKENDS)
def test_image_roundtrip_plain_pillow(name, photo):
    codec = get_codec(name)
    data = codec.encode(photo, {"quality": 90})
    im = _plain_decode(data)
    assert im.size == (photo.shape[1], photo.shape[0])
    assert im.format == codec.format.upper()
    assert _psnr(photo, np.asarray(im.convert("RGB"))) > 30
    # the backend's own decode agrees with Pillow's
    np.testing.assert_array_equal(np.asarray(codec.decode(data)), np.asarray(im))


@pytest.mark.parametrize("name", IMAGE_BACKENDS)
def test_quality_monotone_in_size(name, photo):
    codec = get_codec(name)
    sizes = [len(codec.encode(photo, {"quality": q})) for q in (30, 60, 95)]
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.parametrize("name", [n for n in ("jpeg", "mozjpeg") if n in IMAGE_BACKENDS])
@pytest.mark.parametrize("sub,factors", [("4:4:4", (1, 1)), ("4:2:0", (2, 2)), ("4:2:2", (2, 1))])
def test_jpeg_subsampling_written(name, sub, factors, photo):
    im = _plain_decode(get_codec(name).encode(photo, {"quality": 80, "subsampling": sub}))
    assert im.layer[0][1:3] == factors  # luma sampling factors (h, v)


@pytest.mark.parametrize("name", [n for n in ("jpeg", "mozjpeg", "jpegli") if n in IMAGE_BACKENDS])
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_quality_100_on_noise_does_not_overflow(name, progressive):
    # random noise at quality 100 with 4:4:4 needs about 2.9 bytes per pixel; Pillow's buffer for
    # optimize/progressive holds 2 and libjpeg cannot grow it ("Suspension not allowed here")
    noise = np.random.default_rng(3).integers(0, 256, (192, 160, 3), np.uint8)
    codec = get_codec(name)
    params = {"quality": 100}
    if "subsampling" in codec.space:
        params["subsampling"] = "4:4:4"
    if "progressive" in codec.space:
        params["progressive"] = progressive
    data = codec.encode(noise, params)
    assert len(data) > 1.5 * noise.shape[0] * noise.shape[1]
    # 4:2:0-only backends (jpegli) cannot keep random chroma; luma is always kept
    luma = lambda a: a.astype(np.float64) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert _psnr(luma(noise), luma(np.asarray(_plain_decode(data).convert("RGB")))) > 35


def test_jpeg_progressive_and_optimize(photo):
    c = get_codec("jpeg")
    assert _plain_decode(c.encode(photo, {"progressive": True})).info.get("progressive") == 1
    assert not _plain_decode(c.encode(photo, {"progressive": False})).info.get("progressive")
    assert len(c.encode(photo, {"optimize": True})) < len(c.encode(photo, {"optimize": False}))


def test_avif_params(photo):
    if "avif" not in IMAGE_BACKENDS:
        pytest.skip("no AVIF encoder")
    c = get_codec("avif")
    a = c.encode(photo, {"quality": 50, "speed": 8, "subsampling": "4:4:4"})
    b = c.encode(photo, {"quality": 50, "speed": 8, "subsampling": "4:2:0"})
    assert a != b and _plain_decode(a).size == _plain_decode(b).size
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    assert _plain_decode(c.encode(rgba, {"speed": 8})).mode == "RGBA"


@pytest.mark.parametrize("name", [n for n in IMAGE_BACKENDS])
def test_metadata_carried(name, photo):
    exif = Image.Exif()
    exif[0x010E] = "hello"
    meta = Metadata(icc_profile=Image.new("RGB", (1, 1)).info.get("icc_profile") or _srgb_icc(),
                    exif=exif.tobytes(), xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"></x:xmpmeta>')
    im = _plain_decode(get_codec(name).encode(photo, {"quality": 80}, metadata=meta))
    assert im.info.get("icc_profile") == meta.icc_profile
    assert im.getexif().get(0x010E) == "hello"


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_greyscale_jpeg(photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    im = _plain_decode(get_codec("jpeg").encode(grey, {"quality": 85}))
    assert im.mode == "L"


@pytest.mark.parametrize(
    "params,match",
    [({"quality": 0}, r"quality=0 is out of range"), ({"quality": 101}, "101"), ({"quality": "high"}, "integer"),
     ({"subsampling": "4:1:1"}, "4:1:1"), ({"qualty": 80}, "unknown parameter"), ({"progressive": "yes"}, "bool")],
)
def test_bad_params_name_the_value(params, match, photo):
    with pytest.raises(ValueError, match=match) as ei:
        get_codec("jpeg").encode(photo, params)
    assert isinstance(ei.value, OptionError)


def test_jpeg_refuses_alpha(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    with pytest.raises(OptionError, match="RGBA"):
        get_codec("jpeg").encode(rgba)


def test_zstd_roundtrip_with_plain_zstandard():
    c = get_codec("zstd")
    data = b"precodec " * 1000 + bytes(range(256))
    for params in ({"level": 1}, {"level": 19}, {"level": 3, "long_distance": True, "window_log": 20}):
        frame = c.encode(data, params)
        assert zstandard.ZstdDecompressor().decompress(frame) == data  # plain zstandard decodes it
    zd = zstandard.train_dictionary(4096, [b'{"id": %d, "name": "item%d", "ok": true}' % (i, i) for i in range(500)])
    rec = b'{"id": 7, "name": "item7", "ok": true}'
    frame = c.encode(rec, dictionary=zd.as_bytes())
    assert zstandard.ZstdDecompressor(dict_data=zd).decompress(frame) == rec
    with pytest.raises(OptionError):
        c.encode(b"x", {"window_log": 5})


def test_registry_unknown_and_missing_dependency(monkeypatch):
    with pytest.raises(OptionError, match="unknown backend"):
        get_codec("webp2")
    monkeypatch.setitem(REGISTRY, "fake", PluginEntry("fake", "precodec.plugins.jpegli", "JpegliCodec", "jpeg",
                                                       "anchors"))
    from precodec.plugins import jpegli

    monkeypatch.setattr(jpegli.JpegliCodec, "available", classmethod(lambda cls: False))
    with pytest.raises(MissingDependencyError, match=r"pip install precodec\[anchors\]"):
        get_codec("fake")


@pytest.mark.parametrize("module,cls", [("mozjpeg", "MozjpegCodec"), ("jpegli", "JpegliCodec"), ("avif", "AvifCodec")])
def test_available_follows_require(monkeypatch, module, cls):
    import importlib

    codec = getattr(importlib.import_module(f"precodec.plugins.{module}"), cls)

    def missing(cls):
        raise MissingDependencyError("pip install precodec[anchors]")

    monkeypatch.setattr(codec, "require", classmethod(missing))
    assert codec.available() is False


def test_codec_info_lists_versions_and_spaces():
    rows = {r["name"]: r for r in codec_info()}
    assert rows["jpeg"]["available"] and "pillow" in rows["jpeg"]["versions"]
    names = [p["name"] for p in rows["jpeg"]["params"]]
    assert names == ["quality", "subsampling", "progressive", "optimize"]
