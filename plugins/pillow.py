"""A drop-in Pillow save hook: ``im.save("a.jpg", target="ssimulacra2:80")``.

Nothing happens on import (the pillow-heif convention).  :func:`register`
wraps Pillow's save handlers for JPEG (``Image.SAVE["JPEG"]``) and AVIF
(``Image.SAVE["AVIF"]`` and ``Image.SAVE_ALL["AVIF"]``); :func:`unregister`
puts Pillow's own handlers back.  ``import precodec.plugins.pillow_register``
does the registration for those who prefer an import.

Which saves go through precodec
-------------------------------
Only saves that ask for it.  A save opts in with any of these keywords:

``target="ssimulacra2:80"``
    The quality to reach (any :class:`precodec.Target` spelling or preset).
``quality="auto"``
    Let precodec choose the quality (at the registered default target, or
    ``ssimulacra2:80``).
``denoise="auto" | "clean" | "off"``
    Learned denoising before the encoder.
``max_bytes=N``, ``backend="mozjpeg"``, ``strip_metadata=True``
    As in :func:`precodec.optimize`.
``precodec=True``
    Use the registered defaults.
``on_record=callable``
    Called with the :class:`~precodec.record.DecisionRecord` of this save.

Everything else is plain Pillow, byte for byte: a save without these
keywords, ``precodec=False``, ``quality="keep"`` and every save precodec's
own encoders make (a context variable marks them, so the hook never
recurses).  MPO is not touched.  Pillow encoder keywords that precodec
understands are honoured: an integer ``quality`` (then no search is made
unless ``target`` is also given), ``subsampling``, ``progressive``,
``optimize`` for JPEG; ``speed`` and ``subsampling`` for AVIF.

Metadata: ICC, EXIF and XMP are carried explicitly: the save's own
``icc_profile=``/``exif=``/``xmp=`` when given, else those of the image
(Pillow's JPEG writer would drop EXIF unless asked).  EXIF orientation is
applied to the pixels and reset to 1, as everywhere in precodec.

The kill switch ``PRECODEC_DISABLE=1`` makes every opted-in save a plain
Pillow save (precodec keywords removed, ``quality="auto"`` meaning Pillow's
default), without code changes.

Decision records are passed to ``on_record`` (registered default or per
save) and logged as one JSON line at INFO level on the ``precodec`` logger.

Example
-------
>>> import io, numpy as np
>>> from PIL import Image
>>> from precodec.plugins import pillow as hook
>>> hook.register(target="psnr:30")
>>> im = Image.fromarray(np.full((32, 32, 3), 120, np.uint8))
>>> buf = io.BytesIO(); im.save(buf, "JPEG", quality="auto")
>>> buf.getvalue()[:2]
b'\\xff\\xd8'
>>> hook.unregister()
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from typing import Any, Callable, Iterator, Mapping

from PIL import Image

from ..errors import AnimatedImageError, OptionError

__all__ = ["register", "unregister", "is_registered", "bypass", "PRECODEC_KEYS"]

logger = logging.getLogger("precodec")

#: save() keywords that belong to precodec (removed before any plain Pillow save)
PRECODEC_KEYS = ("precodec", "target", "denoise", "max_bytes", "backend", "strip_metadata", "on_record")
_DEFAULT_KEYS = ("target", "denoise", "max_bytes", "backend", "strip_metadata", "on_record")
_DENOISE = ("off", "auto", "clean")

#: (table, FORMAT) -> precodec format
_HANDLERS: dict[tuple[str, str], str] = {("SAVE", "JPEG"): "jpeg", ("SAVE", "AVIF"): "avif", ("SAVE_ALL", "AVIF"): "avif"}
#: encoderinfo keys forwarded as encoder parameters, per format
_PARAM_KEYS = {"jpeg": ("quality", "subsampling", "progressive", "optimize"), "avif": ("quality", "speed", "subsampling")}
_PIL_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}

_inside = contextvars.ContextVar("precodec_pillow_inside", default=False)
_lock = threading.RLock()
_defaults: dict[str, Any] = {}
#: (table, FORMAT) -> the handler we wrapped
_originals: dict[tuple[str, str], Callable[..., Any]] = {}


@contextlib.contextmanager
def bypass() -> Iterator[None]:
    """Within this block every save is a plain Pillow save (precodec's own encodes use it)."""
    token = _inside.set(True)
    try:
        yield
    finally:
        _inside.reset(token)


def _validate_defaults(defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(defaults) - set(_DEFAULT_KEYS))
    if unknown:
        raise OptionError(f"unknown register() option(s) {unknown}; allowed: {list(_DEFAULT_KEYS)}")
    out = dict(defaults)
    if out.get("target") is not None:
        from ..targets import Target

        out["target"] = str(Target.parse(out["target"]))
    if "denoise" in out and out["denoise"] not in _DENOISE:
        raise OptionError(f"denoise={out['denoise']!r} is not one of {list(_DENOISE)}")
    if out.get("max_bytes") is not None and (not isinstance(out["max_bytes"], int) or out["max_bytes"] <= 0):
        raise OptionError(f"max_bytes={out['max_bytes']!r} must be a positive integer")
    if out.get("on_record") is not None and not callable(out["on_record"]):
        raise OptionError(f"on_record={out['on_record']!r} is not callable")
    return out


def _table(name: str) -> dict[str, Any]:
    return Image.SAVE if name == "SAVE" else Image.SAVE_ALL


def _make_wrapper(table: str, fmt: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def _save(im: Image.Image, fp: Any, filename: Any) -> None:
        info = getattr(im, "encoderinfo", None) or {}
        if _inside.get() or not _wants_precodec(info):
            return original(im, fp, filename)
        from .. import config

        if config.learned_disabled():  # kill switch: plain Pillow
            return _plain(original, im, fp, filename, info)
        if table == "SAVE_ALL" and (info.get("append_images") or getattr(im, "n_frames", 1) > 1):
            raise AnimatedImageError(
                "precodec options were given for a multi-frame save; precodec encodes single images only "
                "(save without precodec options, or with precodec=False, to write an animation)"
            )
        if not _precodec_save(im, fp, info, _HANDLERS[(table, fmt)]):
            return _plain(original, im, fp, filename, info)

    _save.__precodec_wrapped__ = original  # type: ignore[attr-defined]
    _save.__name__ = f"_precodec_{table.lower()}_{fmt.lower()}"
    return _save


def _wants_precodec(info: Mapping[str, Any]) -> bool:
    flag = info.get("precodec")
    if flag is False:
        return False
    if info.get("quality") == "keep":
        return False
    if flag is True or info.get("quality") == "auto":
        return True
    return any(k in info for k in PRECODEC_KEYS if k != "precodec")


def _plain(original: Callable[..., Any], im: Image.Image, fp: Any, filename: Any, info: Mapping[str, Any]) -> None:
    """Call Pillow's handler with precodec's keywords removed (Pillow's own per-save state, restored after)."""
    clean = {k: v for k, v in info.items() if k not in PRECODEC_KEYS}
    if clean.get("quality") == "auto":
        del clean["quality"]
    saved = im.encoderinfo
    im.encoderinfo = clean
    try:
        original(im, fp, filename)
    finally:
        im.encoderinfo = saved


def _subsampling(value: Any) -> Any:
    if isinstance(value, str) and value in ("4:4:4", "4:2:2", "4:2:0"):
        return value
    if isinstance(value, int) and value in _PIL_SUBSAMPLING:
        return _PIL_SUBSAMPLING[value]
    raise OptionError(f"subsampling={value!r} cannot be used with precodec; use '4:4:4', '4:2:2' or '4:2:0'")


def _options(info: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """Merge registered defaults and this save's keywords into optimize() options."""
    with _lock:
        defaults = dict(_defaults)
    opts = {k: info[k] if k in info else defaults.get(k) for k in _DEFAULT_KEYS}
    params: dict[str, Any] = {}
    for key in _PARAM_KEYS[fmt]:
        if key in info and info[key] is not None:
            v = info[key]
            if key == "quality" and v == "auto":
                continue
            if key == "subsampling":
                if v in (-1, "keep"):
                    continue
                v = _subsampling(v)
            if key in ("progressive", "optimize"):
                v = bool(v)
            params[key] = v
    target = info.get("target")
    if target is None:
        if "quality" in params:
            target = None  # fixed quality: encode with the given settings (denoise etc. still apply)
        else:
            target = defaults.get("target") or "ssimulacra2:80"
    elif "quality" in params:
        raise OptionError(
            f"target={target!r} and quality={params['quality']!r} are mutually exclusive; use quality='auto' or drop one"
        )
    denoise = opts.get("denoise") or "off"
    if denoise not in _DENOISE:
        raise OptionError(f"denoise={denoise!r} is not one of {list(_DENOISE)}")
    return {
        "format": fmt,
        "target": target,
        "params": params,
        "backend": opts.get("backend"),
        "max_bytes": opts.get("max_bytes"),
        "strip_metadata": bool(opts.get("strip_metadata") or False),
        "denoise": denoise,
        "on_record": opts.get("on_record"),
    }


def _source_image(im: Image.Image, info: Mapping[str, Any]) -> Image.Image:
    """A private copy of ``im`` whose ``info`` carries the metadata this save should write."""
    src = im.copy()
    src.info = dict(im.info)
    for key in ("icc_profile", "exif", "xmp"):
        if key in info:  # the save's own value wins, also an empty one (= drop it)
            v = info[key]
            if isinstance(v, Image.Exif):
                v = v.tobytes()
            if isinstance(v, str):
                v = v.encode("utf-8")
            if v:
                src.info[key] = v
            else:
                src.info.pop(key, None)
                if key == "xmp":
                    src.info.pop("XML:com.adobe.xmp", None)
    if "exif" not in src.info:
        exif = im.getexif()
        if len(exif):
            src.info["exif"] = exif.tobytes()
    src._exif = None  # type: ignore[attr-defined]  # let getexif() read the info above
    return src


def _too_small(im: Image.Image, target: Any) -> str:
    """Why ``target``'s metric cannot score ``im`` (smaller than it needs), or ``""``."""
    from ..metrics import too_small
    from ..targets import Target

    try:
        metric = Target.parse(target).metric
    except Exception:  # a bad target: optimize() names it
        return ""
    return too_small(metric, *im.size)


def _precodec_save(im: Image.Image, fp: Any, info: Mapping[str, Any], fmt: str) -> bool:
    """Encode through precodec; False (nothing written) when the image is too small for the target's metric."""
    from ..pipeline import optimize

    opts = _options(info, fmt)
    on_record = opts.pop("on_record")
    why = _too_small(im, opts["target"]) if opts["target"] is not None else ""
    if why:
        # a drop-in hook must save whatever Pillow saves: a spacer or a tracking pixel gets Pillow's plain save
        logger.info("precodec: %s: Pillow's plain save", why)
        return False
    src = _source_image(im, info)
    source = getattr(fp, "name", None) or getattr(im, "filename", None) or None
    with bypass():
        res = optimize(src, source=str(source) if source else None, **opts)
    fp.write(res.data)
    if logger.isEnabledFor(logging.INFO):
        logger.info(res.record.to_json())
    if on_record is not None:
        on_record(res.record)
    return True


def register(**defaults: Any) -> None:
    """Install the save hook for JPEG and AVIF.

    Parameters
    ----------
    **defaults
        Defaults for saves that opt in: ``target``, ``denoise``,
        ``max_bytes``, ``backend``, ``strip_metadata``, ``on_record``.  They
        never make a save opt in by themselves (except through
        ``precodec=True``), so plain saves stay plain.

    Notes
    -----
    Registering again is harmless: it updates the defaults and wraps any
    handler that replaced ours since (for example after ``import pillow_avif``).

    Examples
    --------
    >>> from precodec.plugins import pillow as hook
    >>> hook.register(target="high"); hook.is_registered()
    True
    >>> hook.unregister(); hook.is_registered()
    False
    """
    clean = _validate_defaults(defaults)
    Image.init()
    try:  # make sure an AVIF handler exists so it can be wrapped
        from .avif import ensure_avif

        ensure_avif()
    except Exception:  # AVIF unavailable: JPEG only
        pass
    with _lock:
        _defaults.clear()
        _defaults.update(clean)
        for (table, fmt) in _HANDLERS:
            tab = _table(table)
            current = tab.get(fmt)
            if current is None or getattr(current, "__precodec_wrapped__", None) is not None:
                continue
            _originals[(table, fmt)] = current
            tab[fmt] = _make_wrapper(table, fmt, current)


def unregister() -> None:
    """Remove the hook: Pillow's handlers are back (a handler installed over ours is left alone).

    Examples
    --------
    >>> from precodec.plugins import pillow as hook
    >>> hook.unregister()  # harmless when not registered
    """
    with _lock:
        for (table, fmt), original in list(_originals.items()):
            tab = _table(table)
            current = tab.get(fmt)
            if current is not None and getattr(current, "__precodec_wrapped__", None) is not None:
                tab[fmt] = current.__precodec_wrapped__
            del _originals[(table, fmt)]
        _defaults.clear()


def is_registered() -> bool:
    """True when at least one of Pillow's handlers is currently wrapped by precodec."""
    with _lock:
        return any(
            getattr(_table(t).get(f), "__precodec_wrapped__", None) is not None for (t, f) in _HANDLERS
        )
