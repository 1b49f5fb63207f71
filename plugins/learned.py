"""The opt-in learned image codec as a backend and as a Pillow plugin.

A new bitstream (``.pcl``, :mod:`precodec.learned`): only the ends you
control can read it.  Nothing is registered on import.

* Backend ``"learned"`` in :mod:`precodec.plugins` (``get_codec("learned")``),
  parameters ``rate`` 0-5 (rate point, higher = more bits and quality) and
  ``model`` (one of ``precodec.learned.WRITE_MODELS``; default the SSIMULACRA2-tuned one).
* Pillow open/save for ``.pcl`` (format ``"PRECODEC"``), installed only by
  :func:`register_learned_plugin` (or ``import precodec.plugins.learned_register``
  is not provided on purpose: call the function).  The kill switch
  ``PRECODEC_DISABLE=1`` makes :func:`register_learned_plugin` a no-op and
  saving to ``.pcl`` fail.

Example
-------
>>> import io, numpy as np
>>> from PIL import Image
>>> from precodec.plugins.learned import register_learned_plugin, unregister_learned_plugin
>>> register_learned_plugin()
True
>>> buf = io.BytesIO()
>>> Image.fromarray(np.full((16, 16, 3), 80, np.uint8)).save(buf, "PRECODEC", rate=1)
>>> Image.open(io.BytesIO(buf.getvalue())).size
(16, 16)
>>> unregister_learned_plugin()
"""

from __future__ import annotations

import io
from typing import Any, Mapping

from PIL import Image, ImageFile

from .. import config
from ..errors import BitstreamError, EncoderError, OptionError
from ..learned import DEFAULT_MODEL, WRITE_MODELS
from .base import ImageCodec, Param, ParamSpace

__all__ = ["LearnedCodec", "register_learned_plugin", "unregister_learned_plugin", "FORMAT", "EXTENSION"]

FORMAT = "PRECODEC"
EXTENSION = ".pcl"
MAGIC = b"\x89PCL"


class LearnedCodec(ImageCodec):
    """precodec's learned image codec (opt-in; a new bitstream)."""

    name = "learned"
    format = "learned"
    extensions = (EXTENSION,)
    media_type = "image/x-precodec-learned"
    space = ParamSpace((
        Param("rate", "int", 3, 0, 5, doc="rate point, 0 smallest .. 5 best quality"),
        Param("model", "choice", DEFAULT_MODEL, choices=tuple(WRITE_MODELS),
              doc="weights to write with: the SSIMULACRA2-tuned default or the MSE-trained model"),
    ))

    @classmethod
    def available(cls) -> bool:
        try:
            from ..learned import available
        except ImportError:  # pragma: no cover
            return False
        return available()[0]

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, metadata: Any = None,
               **kwargs: Any) -> bytes:
        from .. import learned

        p = self.space.validate({**(params or {}), **kwargs})
        return learned.encode(data, rate=p["rate"], model=p["model"])

    def decode(self, data: bytes) -> Any:
        from .. import learned

        return learned.decode(data)

    def versions(self) -> dict[str, str]:
        from .. import learned

        out = {k: str(v) for k, v in learned.info().items()}
        try:
            import constriction  # noqa: F401
            from importlib.metadata import version

            out["constriction"] = version("constriction")
        except Exception:  # pragma: no cover
            pass
        return out


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == MAGIC


class PrecodecImageFile(ImageFile.ImageFile):
    """Pillow reader for ``.pcl`` streams (decodes the whole image on load)."""

    format = FORMAT
    format_description = "precodec learned codec"

    def _open(self) -> None:
        from .. import learned

        head = self.fp.read(64)
        try:
            info = learned.stream_info(head)
        except BitstreamError as exc:
            raise SyntaxError(str(exc)) from None
        self._size = (info["width"], info["height"])
        self._mode = info["mode"]
        self.info["rate"] = info["rate"]
        self.info["model"] = info["model"]
        self.info["model"] = info["model"]
        self.tile = []

    def load(self) -> Any:
        if self.tile == [] and getattr(self, "_pcl_loaded", False):
            return super().load()
        from .. import learned

        self.fp.seek(0)
        data = self.fp.read()
        im = learned.decode(data)
        self.im = im.im
        self._pcl_loaded = True
        self.readonly = 0
        return Image.Image.load(self)


def _save(im: Image.Image, fp: Any, filename: Any) -> None:
    from .. import learned

    if config.learned_disabled():
        raise EncoderError(f"the learned codec is disabled by {config.KILL_SWITCH_ENV}")
    rate = im.encoderinfo.get("rate", learned.DEFAULT_RATE)
    target = im.encoderinfo.get("target")
    metric = im.encoderinfo.get("metric", "ssimulacra2")
    if target is not None and "rate" in im.encoderinfo:
        raise OptionError("give either rate= or target=, not both")
    model = im.encoderinfo.get("model")
    if target is not None:
        data = learned.encode(im, target=target, metric=metric, model=model)
    else:
        data = learned.encode(im, rate=rate, model=model)
    fp.write(data)


def register_learned_plugin() -> bool:
    """Register Pillow open and save for ``.pcl`` / format ``"PRECODEC"``.

    Returns False (and registers nothing) when the kill switch is on.
    """
    if config.learned_disabled():
        return False
    Image.register_open(FORMAT, PrecodecImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, LearnedCodec.media_type)
    return True


def unregister_learned_plugin() -> None:
    """Remove the ``.pcl`` registration from Pillow."""
    Image.OPEN.pop(FORMAT, None)
    if FORMAT in Image.ID:
        Image.ID.remove(FORMAT)
    Image.SAVE.pop(FORMAT, None)
    for ext, fmt in list(Image.EXTENSION.items()):
        if fmt == FORMAT:
            del Image.EXTENSION[ext]
    Image.MIME.pop(FORMAT, None)
