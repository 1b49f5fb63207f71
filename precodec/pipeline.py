"""The image pipeline behind :func:`precodec.optimize`.

decode and normalise -> analyse -> preprocess -> predict parameters -> encode
with the stock encoder -> verify the target -> guard -> bytes + decision record.

Strategies (``strategy=``):

``"auto"``
    The learned predictor (:mod:`precodec.tuners.predictor`) proposes the
    configuration and quality per image; the output is encoded, measured and
    corrected along the predicted curve until the target is met.  Falls back
    to ``"bisect"`` (and says why in the record) under the kill switch
    ``PRECODEC_DISABLE=1``, for targets other than SSIMULACRA2, for content
    far from the training data, and when the prediction cannot be verified.
``"bisect"``
    The plain path: bisection over quality with the backend's usual settings
    (libjpeg-turbo 4:2:0 with optimised Huffman tables; AVIF 4:2:0 speed 6).
``"oracle"``
    Dense search over the whole parameter space (slow; for benchmarks).

Every returned result with a target has been measured against the reference.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import config
from .errors import OptionError, TargetUnreachableError, UnsupportedModeError
from .intake import Intake, ImageSource, load_image
from .plugins import get_codec
from .record import DecisionRecord, Result
from .targets import Target

if TYPE_CHECKING:  # the tuners import lazily at run time
    from .tuners.search import Calibration

__all__ = ["optimize", "IMAGE_FORMATS", "DEFAULT_BACKEND", "STRATEGIES"]

IMAGE_FORMATS = ("jpeg", "avif")
#: format -> backend used by the plain path and when none is named
DEFAULT_BACKEND = {"jpeg": "jpeg", "avif": "avif"}
STRATEGIES = ("auto", "bisect", "oracle")


def _formats(format: "str | Sequence[str]") -> list[str]:
    if isinstance(format, str):
        fmts = list(IMAGE_FORMATS) if format == "auto" else [format]
    elif isinstance(format, (list, tuple)) and format:
        fmts = list(dict.fromkeys(format))
    else:
        raise OptionError(f"format={format!r} must be one of {list(IMAGE_FORMATS)}, 'auto' or a sequence of them")
    for f in fmts:
        if f not in IMAGE_FORMATS:
            raise OptionError(f"format={f!r} is not one of {list(IMAGE_FORMATS)} (or 'auto')")
    return fmts


def _backends(fmts: list[str], backend: "str | Sequence[str] | None") -> dict[str, list[str]]:
    """format -> backends to use (available ones), honouring ``backend``."""
    from .plugins import available_codecs

    out: dict[str, list[str]] = {f: [] for f in fmts}
    if backend is None:
        avail = available_codecs()
        for f in fmts:
            out[f] = [n for n in _KNOWN_BACKENDS[f] if n in avail]
        return out
    names = [backend] if isinstance(backend, str) else list(backend)
    for n in names:
        codec = get_codec(n)
        if codec.format not in out:
            raise OptionError(f"backend {n!r} writes {codec.format}, not {' or '.join(fmts)}")
        out[codec.format].append(n)
    return {f: b for f, b in out.items() if b}


_KNOWN_BACKENDS = {"jpeg": ("jpeg", "mozjpeg", "jpegli"), "avif": ("avif",)}


def _encoder_input(intake: Intake, fmts: list[str], notes: list[str]) -> tuple[Any, list[str]]:
    """Image handed to the encoders (alpha dropped when opaque), and the formats that can store it."""
    im = intake.image
    if intake.has_alpha:
        if intake.alpha_is_opaque():
            im = im.convert("RGB" if im.mode == "RGBA" else "L")
        else:
            keep = [f for f in fmts if getattr(get_codec(DEFAULT_BACKEND[f]), "alpha", False)]
            if not keep:
                raise UnsupportedModeError(
                    f"image has transparency, which {fmts[0].upper()} cannot store; use format='avif' "
                    "or flatten it first")
            if keep != fmts:
                notes.append(f"transparency: only {keep} considered")
            fmts = keep
    return im, fmts


def optimize(
    image: ImageSource,
    *,
    format: "str | Sequence[str]" = "jpeg",
    target: "str | Target | None" = "ssimulacra2:80",
    params: Mapping[str, Any] | None = None,
    backend: "str | Sequence[str] | None" = None,
    max_bytes: int | None = None,
    strip_metadata: bool = False,
    denoise: str = "off",
    denoise_options: Mapping[str, Any] | None = None,
    source: str | None = None,
    strategy: str = "auto",
    compare: bool = False,
    max_decode_ms: float | None = None,
    calibration: "Calibration | None" = None,
) -> Result:
    """Encode ``image`` with a stock encoder at the smallest settings reaching ``target``.

    Parameters
    ----------
    image : path, bytes, file object, PIL.Image.Image or numpy.ndarray
        The input; never modified.
    format : {"jpeg", "avif", "auto", "learned"} or sequence of them
        Output format; with several (``"auto"`` is ``("jpeg", "avif")``) the
        smallest output meeting the target wins.  ``"learned"`` is the opt-in
        learned codec (a new bitstream, ``.pcl``, that only precodec decodes;
        see :mod:`precodec.learned`); it is never chosen by ``"auto"``.
    target : str or Target or None
        Quality to reach, measured against the original (``"ssimulacra2:80"``,
        ``"psnr:40"``, a preset such as ``"high"``).  None encodes with
        ``params`` as given (or the best quality fitting ``max_bytes``).
    params : mapping, optional
        Encoder settings to fix (with ``target``, ``quality`` may not be
        fixed); the search then only varies the others.
    backend : str or sequence of str, optional
        Encoder backend(s) (``"jpeg"`` = libjpeg-turbo, ``"mozjpeg"``,
        ``"jpegli"``, ``"avif"``).  Default: every installed backend of the
        format(s); the plain path uses libjpeg-turbo / AVIF.
    max_bytes : int, optional
        Size cap.  With a target, a result over the cap is replaced by the
        best quality that fits (``record.target_met`` is then False).
    strip_metadata : bool
        Drop ICC/EXIF/XMP instead of carrying them.
    denoise : {"off", "auto", "clean"}
        Learned denoising before the encoder (see :mod:`precodec.preproc`).
    denoise_options : mapping, optional
        Keyword options of :func:`precodec.preproc.preprocess`: ``content``
        (``"detect"``, or ``"photo"``/``"other"`` to force the content guard),
        ``strength``, ``threads``, ``precision``.
    source : str, optional
        Label for the decision record (the CLI passes the path).
    strategy : {"auto", "bisect", "oracle"}
        ``"auto"``: learned prediction, verified (falls back to bisection when
        it cannot apply); ``"bisect"``: the plain path; ``"oracle"``: dense
        search over the whole space (slow).
    compare : bool
        Also run the plain path and return the smaller of the two results
        meeting the target (both are in the record).
    max_decode_ms : float, optional
        Reject candidates whose measured decode time is above this (AVIF
        decodes several times slower than JPEG).
    calibration : precodec.tuners.search.Calibration, optional
        A batch's running correction of the predictor (pass the same object
        for every image of a batch): the learned path starts its first aim
        from the batch's mean first-encode error so far and adds its own.
        The batch optimizer uses one per run with ``--calibrate``; the
        record's ``predicted["calibration"]`` shows what applied.

    Returns
    -------
    Result
        Bytes, format, parameters, measured quality and the decision record.

    Raises
    ------
    OptionError
        Bad or contradictory options (``target`` with ``params["quality"]``,
        unknown format, backend or parameter, bad target).
    TargetUnreachableError
        ``max_bytes`` is smaller than the smallest output.

    Examples
    --------
    >>> import numpy as np, precodec
    >>> y, x = np.mgrid[0:96, 0:128]
    >>> img = np.dstack([x * 2, y * 2, (x + y)]).astype(np.uint8)
    >>> r = precodec.optimize(img, format="jpeg", target="ssimulacra2:70")
    >>> r.format, r.quality["ssimulacra2"] >= 70, r.record.target_met
    ('jpeg', True, True)
    """
    t0 = time.perf_counter()
    if format == "learned":
        return _optimize_learned(image, target=target, params=params, backend=backend, max_bytes=max_bytes,
                                 strip_metadata=strip_metadata, denoise=denoise, source=source, t0=t0)
    fmts = _formats(format)
    tgt = Target.parse(target) if target is not None else None
    fixed = dict(params or {})
    if tgt is not None and "quality" in fixed:
        raise OptionError("target and params['quality'] are mutually exclusive: give one or the other")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0):
        raise OptionError(f"max_bytes={max_bytes!r} must be a positive integer")
    if strategy not in STRATEGIES:
        raise OptionError(f"strategy={strategy!r} is not one of {list(STRATEGIES)}")
    if compare and strategy != "auto":
        raise OptionError(f"compare=True compares the learned path with bisection; it excludes strategy={strategy!r}")
    if calibration is not None:
        from .tuners.search import Calibration as _Calibration

        if not isinstance(calibration, _Calibration):
            raise OptionError(f"calibration={calibration!r} must be a precodec.tuners.search.Calibration or None")
    if max_decode_ms is not None and (isinstance(max_decode_ms, bool) or not isinstance(max_decode_ms, (int, float))
                                      or not max_decode_ms > 0):
        raise OptionError(f"max_decode_ms={max_decode_ms!r} must be a positive number")
    backends = _backends(fmts, backend)
    fmts = [f for f in fmts if f in backends]
    if not fmts:
        raise OptionError(f"no installed backend for format {format!r}")
    from .tuners.space import PLAIN_CONFIG, configs_for

    for f in fmts:  # validate fixed settings against at least one backend of each format
        for b in backends[f]:
            get_codec(b).space.validate({k: v for k, v in fixed.items() if k in get_codec(b).space})
        unknown = [k for k in fixed if not any(k in get_codec(b).space for b in backends[f])]
        if unknown:
            raise OptionError(f"unknown parameter(s) {unknown} for {f}; allowed: "
                              f"{sorted({n for b in backends[f] for n in get_codec(b).space.names})}")

    intake = load_image(image, strip_metadata=strip_metadata)
    notes = list(intake.notes)
    enc_image, fmts = _encoder_input(intake, fmts, notes)
    ref = intake.rgb()
    rec = DecisionRecord(source=source, format=fmts[0], backend=backends[fmts[0]][0],
                         target=str(tgt) if tgt else None, bytes_in=intake.source_bytes, notes=notes)
    rec.time_ms["intake"] = (time.perf_counter() - t0) * 1e3
    rec.learned = False

    from .preproc import preprocess

    pre = preprocess(enc_image, ref, denoise=denoise, record=rec, **dict(denoise_options or {}))
    enc_image, ref = pre.image, pre.reference
    rec.reference = pre.reference_name

    from .tuners.search import Evaluator

    ev = Evaluator(enc_image, ref, tgt, record=rec, fixed=fixed, metadata=intake.metadata)
    configs = {f: [c.name for c in configs_for(f, backends=backends[f], fixed=fixed)] for f in fmts}
    plain = {f: _plain_config(f, backends[f], configs[f], PLAIN_CONFIG) for f in fmts}
    rec.space = {f: configs[f] for f in fmts}

    if tgt is None:
        out = _no_target(ev, fmts, plain, max_bytes, rec)
    else:
        out = _with_target(ev, tgt, fmts, configs, plain, strategy=strategy, compare=compare,
                           max_bytes=max_bytes, max_decode_ms=max_decode_ms, rec=rec, ref=ref,
                           calibration=calibration)

    rec.time_ms["total"] = (time.perf_counter() - t0) * 1e3
    rec.format, rec.backend, rec.config = out.format, out.backend, out.config
    rec.bytes_out = len(out.data)
    rec.applied = {"config": out.config, "backend": out.backend, **out.params}
    rec.measured = dict(out.quality)
    rec.decode_ms = out.decode_ms
    rec.versions = {"precodec": _version(), **get_codec(out.backend).versions()}
    if rec.learned:
        from .tuners.predictor import model_info

        rec.versions["models"] = {f"predictor-{f}": model_info(f)["version"] for f in fmts
                                  if f"predictor-{f}" in str(rec.predicted.get("models", ""))}
    return Result(data=out.data, format=out.format, params=dict(out.params), quality=dict(out.quality), record=rec)


def _optimize_learned(image: ImageSource, *, target: "str | Target | None", params: Mapping[str, Any] | None,
                      backend: Any, max_bytes: int | None, strip_metadata: bool, denoise: str, source: str | None,
                      t0: float) -> Result:
    """``format="learned"``: the opt-in learned codec, rate point chosen for the target.

    Under the kill switch the learned codec is off: the image is encoded as
    plain JPEG by the usual path instead, and the record says so.
    """
    if config.learned_disabled():
        res = optimize(image, format="jpeg", target=target, max_bytes=max_bytes, strip_metadata=strip_metadata,
                       source=source, strategy="bisect")
        res.record.fallback = True
        res.record.reason = (f"kill switch {config.KILL_SWITCH_ENV} is set: learned codec off, plain JPEG instead; "
                             + res.record.reason)
        return res
    from . import learned

    if backend not in (None, "learned"):
        raise OptionError(f"backend={backend!r} does not write format 'learned'")
    if max_bytes is not None:
        raise OptionError("max_bytes is not supported with format='learned'")
    if denoise != "off":
        raise OptionError("denoise is not supported with format='learned'")
    fixed = dict(params or {})
    unknown = sorted(set(fixed) - {"rate", "model"})
    if unknown:
        raise OptionError(f"unknown parameter(s) {unknown} for format 'learned'; allowed: ['model', 'rate']")
    tgt = Target.parse(target) if target is not None else None
    if tgt is not None and "rate" in fixed:
        raise OptionError("target and params['rate'] are mutually exclusive: give one or the other")
    if tgt is not None and tgt.metric not in ("ssimulacra2", "psnr"):
        raise OptionError(f"format='learned' takes ssimulacra2 or psnr targets, not {tgt.metric}")
    model = learned.model_for(tgt.metric if tgt is not None else None, fixed.get("model"))
    intake = load_image(image, strip_metadata=True)
    if intake.has_alpha:
        if not intake.alpha_is_opaque():
            raise UnsupportedModeError("the learned codec stores no transparency; flatten the image first")
    im = intake.image.convert("RGB" if intake.image.mode in ("RGB", "RGBA") else "L")
    ref = np.asarray(im)
    rec = DecisionRecord(source=source, format="learned", backend="learned", target=str(tgt) if tgt else None,
                         bytes_in=intake.source_bytes, notes=list(intake.notes), learned=True)
    rec.time_ms["intake"] = (time.perf_counter() - t0) * 1e3
    if intake.metadata.as_dict():
        rec.notes.append("metadata (ICC/EXIF/XMP) is not stored by the learned codec")
    quality: dict[str, float] = {}
    if tgt is None:
        rate = fixed.get("rate", learned.DEFAULT_RATE)
        data = learned.encode(im, rate=rate, model=model)
        rec.encodes = 1
        rec.strategy, rec.reason = "fixed", "fixed rate point"
    else:
        tr = learned.encode_to_target(im, target=tgt.value, metric=tgt.metric, model=model, strict=False)
        data, rate = tr.data, tr.rate
        quality[tgt.metric] = float(tr.score)
        rec.encodes = rec.metric_runs = len(tr.tried)
        rec.candidates = [{"params": {"rate": r}, tgt.metric: s} for r, s in sorted(tr.tried.items())]
        rec.target_met = tgt.met(tr.score)
        rec.strategy = "bisect-rate"
        rec.reason = ("smallest rate point reaching the target" if rec.target_met
                      else f"target not reachable by the learned codec: best rate point gives {tr.score:.2f}")
    rec.time_ms["total"] = (time.perf_counter() - t0) * 1e3
    rec.bytes_out = len(data)
    rec.applied = {"rate": rate, "model": model}
    rec.measured = dict(quality)
    rec.versions = {"precodec": _version(), "learned": learned.info()}
    return Result(data=data, format="learned", params={"rate": rate, "model": model}, quality=quality, record=rec)


def _plain_config(fmt: str, backends: list[str], configs: list[str], table: Mapping[str, str]) -> str:
    """The configuration the plain path bisects: the format's usual backend/settings when allowed."""
    for b in [DEFAULT_BACKEND[fmt], *backends]:
        c = table.get(b)
        if b in backends and c in configs:
            return c
    if configs:
        return configs[0]
    return table[backends[0]]


def _no_target(ev: Any, fmts: list[str], plain: Mapping[str, str], max_bytes: int | None,
               rec: DecisionRecord) -> Any:
    from .tuners.search import bytes_cap_search

    rec.strategy = "fixed"
    if max_bytes is None:
        out = ev.encode(plain[fmts[0]], ev.fixed.get("quality"), score=False)
        rec.reason = "fixed parameters (no target)"
        return out
    if "quality" in ev.fixed:
        out = ev.encode(plain[fmts[0]], ev.fixed["quality"], score=False)
        if out.size > max_bytes:
            raise TargetUnreachableError(f"output is {out.size} bytes at the fixed quality, over max_bytes={max_bytes}")
        rec.reason = "fixed parameters within max_bytes"
        return out
    best = None
    for f in fmts:
        e = bytes_cap_search(ev, plain[f], max_bytes)
        if e is not None and (best is None or e.params["quality"] > best.params["quality"]):
            best = e
    if best is None:
        raise TargetUnreachableError(f"no output fits max_bytes={max_bytes}, even at the lowest quality")
    rec.strategy = "bytes-cap"
    rec.reason = f"highest quality not larger than max_bytes={max_bytes}"
    return best


def _learned_blockers(tgt: Target, fmts: list[str]) -> str:
    from .tuners import predictor

    if config.learned_disabled():
        return f"kill switch {config.KILL_SWITCH_ENV} is set: learned predictor off"
    if tgt.metric != "ssimulacra2":
        return f"the predictor is trained for SSIMULACRA2 targets, not {tgt.metric}"
    missing = [f for f in fmts if not predictor.available(f)]
    if missing:
        return f"no predictor shipped for {missing}"
    return ""


def _with_target(ev: Any, tgt: Target, fmts: list[str], configs: Mapping[str, list[str]],
                 plain: Mapping[str, str], *, strategy: str, compare: bool, max_bytes: int | None,
                 max_decode_ms: float | None, rec: DecisionRecord, ref: np.ndarray,
                 calibration: "Calibration | None" = None) -> Any:
    from .tuners.search import bisect_quality, bytes_cap_search, oracle, predicted_search

    out = None
    if strategy == "oracle":
        rec.strategy = "oracle"
        out, per = oracle(ev, [c for f in fmts for c in configs[f]])
        rec.predicted = {"oracle": per}
        rec.reason = "oracle: fewest bytes meeting the target over the whole space"
    elif strategy == "auto":
        why = _learned_blockers(tgt, fmts)
        if not why:
            out, why = _learned(ev, tgt, fmts, configs, max_decode_ms, rec, ref, calibration)
        if why:
            rec.fallback = True
            rec.notes.append(f"fallback to bisection: {why}")
            rec.reason = why
    learned_out = out

    plain_out = None
    search = plain
    if out is None and strategy == "auto" and rec.ood:
        # content unlike the training photos: no prediction to trust, and chroma subsampling (a
        # photographic assumption) often costs more than it saves on text, lines and flat colour
        search = {f: _ood_config(configs[f], plain[f]) for f in fmts}
        moved = {plain[f]: search[f] for f in fmts if search[f] != plain[f]}
        if moved:
            rec.notes.append("content unlike the training photos: bisection with full-resolution chroma on the "
                             "strongest encoder allowed (" + ", ".join(f"{a} -> {b}" for a, b in moved.items()) + ")")
    if out is None or compare:
        plain_out = _bisect_formats(ev, fmts, search, max_decode_ms)
        if out is None and strategy == "auto" and not ev.met(plain_out):
            plain_out = _escalate(ev, plain_out, configs, rec)
        if out is None:
            out = plain_out
            rec.strategy = "bisect"
            rec.reason = (rec.reason + "; " if rec.reason else "") + "bisection over quality with the usual settings"
    if compare and learned_out is not None and plain_out is not None:
        lm, pm = ev.met(learned_out), ev.met(plain_out)
        rec.compare = {"learned": {"config": learned_out.config, "bytes": learned_out.size,
                                   **learned_out.quality, "met": lm},
                       "plain": {"config": plain_out.config, "bytes": plain_out.size,
                                 **plain_out.quality, "met": pm}}
        if pm and (not lm or plain_out.size < learned_out.size):
            out = plain_out
            rec.reason += "; compare: the plain path was smaller, returned it"
            rec.strategy = "bisect"
        else:
            rec.reason += "; compare: the learned path was not larger"
    assert out is not None
    rec.target_met = bool(ev.met(out))
    if not rec.target_met:
        rec.reason += (f"; target {tgt} unreachable: best {tgt.metric} {ev.value(out):.2f} at the top setting of "
                       f"{out.config}")
    if max_bytes is not None and out.size > max_bytes:
        capped = bytes_cap_search(ev, out.config, max_bytes, high=out.params.get("quality"))
        if capped is None:
            raise TargetUnreachableError(f"no output fits max_bytes={max_bytes}, even at the lowest quality")
        out = capped
        rec.target_met = bool(ev.met(out))
        rec.reason += f"; max_bytes={max_bytes}: best quality that fits"
    return out


#: bisection configuration for content the predictor flags as unlike its training data, in order of
#: preference (the first one the parameter space allows).  On ood-dev's 33 flagged images (screenshots,
#: schematics, pixel art, medical), from the per-configuration oracle of the earlier
#: benchmarks/results/predictor_ood_dev.json run, against bisection of 4:2:0 (with its escalation):
#: mozjpeg 4:4:4 -10.3%/-12.4% bytes at targets 70/80, libjpeg-turbo progressive 4:4:4 +0.3%/-12.6%.
OOD_CONFIGS: dict[str, tuple[str, ...]] = {"jpeg": ("mozjpeg:444", "jpeg:444p", "jpeg:444")}


def _ood_config(allowed: list[str], usual: str) -> str:
    from .tuners.space import CONFIGS

    fmt = CONFIGS[usual].format if usual in CONFIGS else ""
    for c in OOD_CONFIGS.get(fmt, ()):
        if c in allowed:
            return c
    return usual


def _bisect_formats(ev: Any, fmts: list[str], plain: Mapping[str, str], max_decode_ms: float | None) -> Any:
    from .tuners.search import bisect_quality

    results = [bisect_quality(ev, plain[f]) for f in fmts]
    fast = results
    if max_decode_ms is not None:
        fast = [e for e in results if e.decode_ms is None or e.decode_ms <= max_decode_ms]
        if not fast:
            ev.record.notes.append(f"no format decodes within max_decode_ms={max_decode_ms}; the fastest is returned")
            fast = [min(results, key=lambda e: e.decode_ms or 0.0)]
    return min(fast, key=lambda e: (not ev.met(e), e.size))


def _escalate(ev: Any, miss: Any, configs: Mapping[str, list[str]], rec: DecisionRecord) -> Any:
    """The usual settings cannot reach the target: try full-resolution chroma (4:4:4) of the same backend."""
    from .tuners.search import bisect_quality
    from .tuners.space import CONFIGS

    name = miss.config.replace(":420", ":444")
    if name == miss.config or name not in configs.get(CONFIGS[miss.config].format, []):
        return miss
    e = bisect_quality(ev, name)
    if ev.met(e) or ev.value(e) > ev.value(miss):
        rec.notes.append(f"{miss.config} cannot reach the target; {name} tried")
        return e
    return miss


def _learned(ev: Any, tgt: Target, fmts: list[str], configs: Mapping[str, list[str]],
             max_decode_ms: float | None, rec: DecisionRecord, ref: np.ndarray,
             calibration: "Calibration | None" = None) -> tuple[Any, str]:
    """The learned path; returns (result or None, why it was abandoned or '')."""
    from .errors import ModelError
    from .tuners import predictor
    from .tuners.features import FEATURE_NAMES, image_features
    from .tuners.search import predicted_search

    ev.prepare()  # the SSIMULACRA2 reference, built once and shared by every candidate
    t = time.perf_counter()
    feats = image_features(ref)
    rec.time_ms["features"] = (time.perf_counter() - t) * 1e3
    rec.features = {n: round(float(v), 4) for n, v in zip(FEATURE_NAMES, feats)}
    h, w = ref.shape[:2]
    curves = {}
    t = time.perf_counter()
    try:
        for f in fmts:
            far = predictor.out_of_distribution(feats, format=f)
            if far:
                rec.ood = far
                return None, (f"content unlike the training data ({len(far)} features out of range: "
                              f"{', '.join(far[:5])}{'...' if len(far) > 5 else ''})")
            allowed = set(configs[f])
            curves.update({k: v for k, v in predictor.predict(feats, format=f, pixels=h * w).items() if k in allowed})
    except ModelError as exc:
        return None, f"predictor unusable: {exc}"
    rec.time_ms["predict"] = (time.perf_counter() - t) * 1e3
    if not curves:
        return None, "no configuration of the predictor fits the fixed parameters"
    rec.learned = True
    out, info = predicted_search(ev, curves, max_decode_ms=max_decode_ms, calibration=calibration)
    info["models"] = [predictor.model_name(f) for f in fmts]
    rec.predicted = info
    if out is None:
        if "unreliable" in info:
            return None, (f"prediction off by {info['unreliable']} points on the first encode: model not "
                          "trusted for this image")
        return None, f"prediction not verified within {info['steps']} encodes"
    rec.strategy = "predict"
    applied = (out.config, out.params.get("quality"))
    if applied == (info["config"], info["quality"]):
        rec.reason = f"predicted {out.config} q={applied[1]} met {tgt} on the first encode"
    else:
        rec.reason = (f"predicted {info['config']} q={info['quality']} (score {info['score']}); "
                      f"measured and corrected to {out.config} q={applied[1]}")
    return out, ""


def _version() -> str:
    from ._version import __version__

    return __version__
