"""Image intake: orientation, modes, metadata, bad inputs, decompression bombs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from precodec.errors import (
    AnimatedImageError,
    ImageInputError,
    ImageTooLargeError,
    OptionError,
    PrecodecError,
    UnsupportedModeError,
)
from precodec.intake import load_image


def _png(im: Image.Image, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG", **kw)
    return b.getvalue()


def test_rgb_roundtrip_from_array_and_private_copy(photo):
    before = photo.copy()
    it = load_image(photo)
    assert it.mode == "RGB" and it.size == (photo.shape[1], photo.shape[0])
    np.testing.assert_array_equal(it.pixels(), photo)
    it.image.putpixel((0, 0), (1, 2, 3))  # our copy is private
    np.testing.assert_array_equal(photo, before)


def test_pil_input_not_mutated(make_photo):
    im = Image.fromarray(make_photo())
    im.info["exif"] = b"x"
    before = im.tobytes()
    it = load_image(im)
    it.image.paste((0, 0, 0), (0, 0, 10, 10))
    assert im.tobytes() == before and im.info["exif"] == b"x" and im.mode == "RGB"


@pytest.mark.parametrize(
    "mode,expected",
    [("L", "L"), ("LA", "LA"), ("RGB", "RGB"), ("RGBA", "RGBA"), ("1", "L"), ("CMYK", "RGB"), ("YCbCr", "RGB")],
)
def test_modes(mode, expected, make_photo):
    im = Image.fromarray(make_photo()).convert(mode)
    it = load_image(im)
    assert it.mode == expected


def test_palette_with_and_without_transparency(make_photo):
    p = Image.fromarray(make_photo()).convert("P")
    assert load_image(p).mode == "RGB"
    p.info["transparency"] = 0
    assert load_image(_png(p)).mode == "RGBA"


def test_16bit_grey_png_is_scaled_to_8bit(make_photo):
    arr = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    data = _png(Image.fromarray(arr))
    it = load_image(data)
    assert it.mode == "L"
    got = it.pixels()
    np.testing.assert_array_equal(got, ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8))
    assert any("16-bit" in n for n in it.notes)


def test_uint16_array_and_bad_dtypes():
    assert load_image(np.full((8, 8, 3), 65535, np.uint16)).pixels().max() == 255
    with pytest.raises(UnsupportedModeError, match="float32"):
        load_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(UnsupportedModeError, match="shape"):
        load_image(np.zeros((8, 8, 5), np.uint8))


def test_float_mode_refused():
    with pytest.raises(UnsupportedModeError, match="'F'"):
        load_image(Image.new("F", (8, 8)))


def test_exif_orientation_applied_and_reset(make_photo):
    arr = make_photo(40, 60)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    b = io.BytesIO()
    im.save(b, "JPEG", exif=exif.tobytes(), quality=95)
    it = load_image(b.getvalue())
    assert it.size == (40, 60)  # rotated
    assert any("orientation" in n for n in it.notes)
    out = Image.Exif()
    out.load(it.metadata.exif)
    assert out.get(0x0112) == 1


def test_icc_exif_xmp_carried_and_strippable(make_photo):
    im = Image.fromarray(make_photo())
    exif = Image.Exif()
    exif[0x010E] = "a description"
    b = io.BytesIO()
    im.save(b, "JPEG", icc_profile=b"\0" * 200, exif=exif.tobytes(), xmp=b"<x:xmpmeta/>")
    it = load_image(b.getvalue())
    assert it.metadata.icc_profile == b"\0" * 200
    assert it.metadata.exif and it.metadata.xmp == b"<x:xmpmeta/>"
    s = load_image(b.getvalue(), strip_metadata=True).metadata
    assert s.icc_profile is None and s.exif is None and s.xmp is None


def test_not_an_image_and_empty_and_truncated(tmp_path, make_photo):
    with pytest.raises(ImageInputError, match="not a recognised image"):
        load_image(b"hello world, not an image")
    with pytest.raises(ImageInputError, match="empty"):
        load_image(b"")
    data = _png(Image.fromarray(make_photo()))
    with pytest.raises(ImageInputError):
        load_image(data[: len(data) // 2])
    p = tmp_path / "missing.png"
    with pytest.raises(ImageInputError, match="cannot read"):
        load_image(str(p))


def test_animated_refused(make_photo):
    frames = [Image.fromarray(make_photo(seed=i)) for i in range(3)]
    b = io.BytesIO()
    frames[0].save(b, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(AnimatedImageError, match="3 frames"):
        load_image(b.getvalue())


def test_pixel_limit_on_every_path(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    arr = np.zeros((40, 40, 3), np.uint8)  # 1600 pixels
    with pytest.raises(ImageTooLargeError, match="1600"):
        load_image(arr)
    with pytest.raises(ImageTooLargeError):
        load_image(Image.fromarray(arr))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = _png(Image.fromarray(arr))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError):
        load_image(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # None disables the check
    assert load_image(arr).size == (40, 40)


def test_errors_share_base_and_bad_source_type():
    with pytest.raises(OptionError):
        load_image(12345)  # type: ignore[arg-type]
    assert issubclass(ImageTooLargeError, PrecodecError) and issubclass(OptionError, ValueError)
