"""The Pillow save hook, driven through ``Image.save``."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms

from precodec.errors import AnimatedImageError, OptionError, PrecodecError
from precodec.metrics import score
from precodec.plugins import pillow as hook

TARGET = "ssimulacra2:60"


@pytest.fixture
def registered():
    hook.register()
    yield hook
    hook.unregister()


@pytest.fixture
def im(make_photo):
    return Image.fromarray(make_photo(64, 80, seed=3))


def _save(image, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _decode(data: bytes) -> Image.Image:
    out = Image.open(io.BytesIO(data))
    out.load()
    return out


PLAIN_CASES = [
    ("JPEG", {}),
    ("JPEG", {"quality": 85, "subsampling": 0, "optimize": True}),
    ("JPEG", {"quality": 50, "progressive": True}),
    ("AVIF", {}),
    ("AVIF", {"quality": 60, "speed": 8}),
]


def test_nothing_happens_on_import():
    code = ("import precodec.plugins.pillow as h; from PIL import Image, JpegImagePlugin; Image.init(); "
            "assert Image.SAVE['JPEG'] is JpegImagePlugin._save; assert not h.is_registered(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("fmt,kw", PLAIN_CASES)
def test_save_without_options_is_byte_identical(im, fmt, kw):
    plain = _save(im, fmt, **kw)
    hook.register(target="ssimulacra2:70")  # defaults never make a plain save opt in
    try:
        hooked = _save(im, fmt, **kw)
        off = _save(im, fmt, precodec=False, **kw)
    finally:
        hook.unregister()
    assert hooked == plain
    assert off == plain


def test_target_goes_through_precodec(registered, im):
    recs = []
    data = _save(im, "JPEG", target=TARGET, on_record=recs.append)
    assert len(recs) == 1  # one record, no recursion through precodec's own Image.save calls
    rec = recs[0]
    assert rec.target == TARGET and rec.encodes >= 1 and rec.bytes_out == len(data)
    out = _decode(data)
    assert out.format == "JPEG" and out.size == im.size
    s = score("ssimulacra2", np.asarray(im), np.asarray(out.convert("RGB")))
    assert s >= 60 - 0.5
    assert len(data) < len(_save(im, "JPEG", quality=95))


def test_quality_auto_uses_registered_target(im):
    recs = []
    hook.register(target="ssimulacra2:55", on_record=recs.append)
    try:
        _save(im, "JPEG", quality="auto")
    finally:
        hook.unregister()
    assert recs and recs[0].target == "ssimulacra2:55"


def test_int_quality_with_denoise_is_fixed_settings(registered, im):
    recs = []
    data = _save(im, "JPEG", quality=70, denoise="off", on_record=recs.append)
    assert recs[0].target is None and recs[0].applied["quality"] == 70
    assert _decode(data).format == "JPEG"


def test_quality_keep_bypasses(registered, tmp_path, im):
    src = tmp_path / "src.jpg"
    im.save(src, quality=80)
    with Image.open(src) as j:
        hook.unregister()
        plain = _save(j, "JPEG", quality="keep")
        hook.register()
        assert _save(j, "JPEG", quality="keep") == plain


def test_target_and_int_quality_conflict(registered, im, tmp_path):
    p = tmp_path / "x.jpg"
    with pytest.raises(OptionError):
        im.save(p, target=TARGET, quality=80)
    with pytest.raises(ValueError, match="bogus"):
        im.save(p, target="bogus:1")
    assert not p.exists()  # Pillow removes the file it created


def test_avif_save_and_save_all_are_wrapped(registered, im):
    recs = []
    a = _save(im, "AVIF", target=TARGET, on_record=recs.append)
    b = _save(im, "AVIF", target=TARGET, save_all=True, on_record=recs.append)
    assert len(recs) == 2 and all(r.format == "avif" for r in recs)
    for data in (a, b):
        assert data[4:12] == b"ftypavif"
        assert _decode(data).size == im.size


def test_save_all_with_frames_and_options_is_refused(registered, im):
    other = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    with pytest.raises(AnimatedImageError):
        _save(im, "AVIF", save_all=True, append_images=[other], target=TARGET)
    # without precodec options an animation is Pillow's business
    assert _save(im, "AVIF", save_all=True, append_images=[other])[4:8] == b"ftyp"


def test_register_twice_and_unregister_restore_pillow():
    Image.init()
    before = {("SAVE", f): Image.SAVE[f] for f in ("JPEG", "AVIF")}
    before[("SAVE_ALL", "AVIF")] = Image.SAVE_ALL["AVIF"]
    hook.register()
    hook.register(target="high")
    try:
        for (t, f), orig in before.items():
            cur = (Image.SAVE if t == "SAVE" else Image.SAVE_ALL)[f]
            assert cur is not orig
            assert cur.__precodec_wrapped__ is orig  # wrapped exactly once
    finally:
        hook.unregister()
    assert Image.SAVE["JPEG"] is before[("SAVE", "JPEG")]
    assert Image.SAVE["AVIF"] is before[("SAVE", "AVIF")]
    assert Image.SAVE_ALL["AVIF"] is before[("SAVE_ALL", "AVIF")]
    assert not hook.is_registered()
    hook.unregister()  # harmless


def test_a_later_handler_is_rewrapped(im):
    Image.init()
    orig = Image.SAVE["AVIF"]
    calls = []

    def foreign(image, fp, filename):  # stands for `import pillow_avif` registering its own
        calls.append(1)
        orig(image, fp, filename)

    hook.register()
    try:
        Image.register_save("AVIF", foreign)
        assert not getattr(Image.SAVE["AVIF"], "__precodec_wrapped__", None)
        hook.register()  # wraps the newcomer
        assert Image.SAVE["AVIF"].__precodec_wrapped__ is foreign
        recs = []
        _save(im, "AVIF", target=TARGET, on_record=recs.append)
        assert recs  # went through precodec
        _save(im, "AVIF", quality=50)
        assert calls  # plain saves reach the foreign handler
    finally:
        hook.unregister()
        Image.register_save("AVIF", orig)
    assert Image.SAVE["AVIF"] is orig


def test_real_pillow_avif_import_is_rewrapped():
    code = """
import io, numpy as np
from PIL import Image
from precodec.plugins import pillow as h
h.register()
try:
    import pillow_avif  # noqa: F401 - registers its own AVIF handler over ours
except ImportError:
    print("skip"); raise SystemExit(0)
h.register()
assert getattr(Image.SAVE["AVIF"], "__precodec_wrapped__", None) is not None
recs = []
buf = io.BytesIO()
y, x = np.mgrid[0:48, 0:48]
Image.fromarray(np.dstack([x * 5, y * 5, x + y]).astype(np.uint8)).save(buf, "AVIF", target="ssimulacra2:50",
                                                                          on_record=recs.append)
assert recs and buf.getvalue()[4:8] == b"ftyp"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    if "skip" in out.stdout:
        pytest.skip("pillow-avif-plugin is not installed")
    assert "ok" in out.stdout


def test_caller_image_and_options_not_mutated(registered, im):
    im.info["comment"] = b"keep me"
    info = dict(im.info)
    pixels = np.asarray(im).copy()
    kwargs = {"target": TARGET, "subsampling": "4:2:0"}
    kw_copy = dict(kwargs)
    _save(im, "JPEG", **kwargs)
    assert im.info == info
    assert np.array_equal(np.asarray(im), pixels)
    assert kwargs == kw_copy
    assert getattr(im, "encoderinfo", {}) == {}  # Pillow's per-save state restored


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("fmt", ["JPEG", "AVIF"])
def test_metadata_carried_explicitly(registered, im, fmt):
    icc = _srgb_icc()
    exif = Image.Exif()
    exif[0x010E] = "precodec test"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    src = im.copy()
    src.info.update(icc_profile=icc, exif=exif.tobytes(), xmp=xmp)
    out = _decode(_save(src, fmt, target=TARGET))
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x010E) == "precodec test"
    got_xmp = out.info.get("xmp") or b""
    assert b"xmpmeta" in (got_xmp if isinstance(got_xmp, bytes) else got_xmp.encode())
    # the save's own keywords win over the image's
    exif2 = Image.Exif()
    exif2[0x010E] = "from save()"
    out2 = _decode(_save(src, fmt, target=TARGET, exif=exif2))
    assert out2.getexif().get(0x010E) == "from save()"


def test_kill_switch_gives_plain_pillow(im, monkeypatch):
    recs = []
    hook.register(on_record=recs.append)
    try:
        monkeypatch.setenv("PRECODEC_DISABLE", "1")
        a = _save(im, "JPEG", target=TARGET, quality="auto", subsampling=0)
        b = _save(im, "AVIF", target=TARGET, speed=8)
    finally:
        hook.unregister()
    assert not recs
    assert a == _save(im, "JPEG", subsampling=0)
    assert b == _save(im, "AVIF", speed=8)


def test_record_logged_as_json_line(registered, im, caplog):
    with caplog.at_level(logging.INFO, logger="precodec"):
        _save(im, "JPEG", target=TARGET)
    lines = [r.getMessage() for r in caplog.records if r.name == "precodec"]
    assert lines
    rec = json.loads(lines[-1])
    assert rec["target"] == TARGET and rec["format"] == "jpeg" and rec["bytes_out"] > 0


def test_mpo_untouched(registered, im):
    Image.init()
    assert not getattr(Image.SAVE["MPO"], "__precodec_wrapped__", None)
    hooked = _save(im, "MPO", target=TARGET)
    hook.unregister()
    assert hooked == _save(im, "MPO", target=TARGET)


def test_register_validates_options():
    with pytest.raises(OptionError, match="nonsense"):
        hook.register(nonsense=1)
    with pytest.raises(ValueError, match="fuzzy"):
        hook.register(denoise="fuzzy")
    assert not hook.is_registered()


def test_errors_are_precodec_errors(registered):
    rgba = Image.new("RGBA", (16, 16), (10, 20, 30, 0))
    with pytest.raises(PrecodecError):
        _save(rgba, "JPEG", target=TARGET)


def test_import_to_register_module():
    code = ("import precodec.plugins.pillow_register; from precodec.plugins import pillow as h; "
            "assert h.is_registered(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("size", [(1, 1), (5, 200)])
def test_image_too_small_for_the_metric_gets_pillows_plain_save(registered, make_photo, size, caplog):
    # a drop-in hook saves whatever Pillow saves: SSIMULACRA2 cannot score under 8 px on a side, so the save is
    # Pillow's own (byte for byte), said in the log, and no precodec record is made
    small = Image.fromarray(make_photo(size[1], size[0], seed=4))
    recs = []
    with caplog.at_level(logging.INFO, logger="precodec"):
        data = _save(small, "JPEG", target=TARGET, on_record=recs.append)
    assert not recs and "ssimulacra2 cannot score" in caplog.text
    hook.unregister()
    assert data == _save(small, "JPEG")
    assert _decode(data).size == size
