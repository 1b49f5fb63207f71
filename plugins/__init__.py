"""Stock-encoder backends and the Pillow save hook.

Backends are registered lazily, by name, in the style of imageio v3: an entry
names its module and class, and nothing is imported until the backend is
asked for.  A backend whose optional dependency is missing raises
:class:`~precodec.errors.MissingDependencyError` saying which extra to install.

Example
-------
>>> from precodec.plugins import get_codec, available_codecs
>>> get_codec("jpeg").name
'jpeg'
>>> "zstd" in available_codecs()
True
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from .base import Codec

__all__ = ["PluginEntry", "REGISTRY", "get_codec", "available_codecs", "codec_info"]


@dataclass(frozen=True)
class PluginEntry:
    """A lazy registry entry: backend name, module, class, and the extra that provides it."""

    name: str
    module: str
    class_name: str
    format: str
    extra: str | None = None

    def load(self) -> "type[Codec]":
        try:
            mod = importlib.import_module(self.module)
        except ImportError as exc:  # pragma: no cover - our own modules import lazily
            hint = f"pip install precodec[{self.extra}]" if self.extra else "reinstall precodec"
            raise MissingDependencyError(f"backend {self.name!r} is unavailable ({exc}): {hint}") from None
        return getattr(mod, self.class_name)


REGISTRY: dict[str, PluginEntry] = {
    e.name: e
    for e in (
        PluginEntry("jpeg", "precodec.plugins.jpeg", "JpegCodec", "jpeg"),
        PluginEntry("mozjpeg", "precodec.plugins.mozjpeg", "MozjpegCodec", "jpeg", "anchors"),
        PluginEntry("jpegli", "precodec.plugins.jpegli", "JpegliCodec", "jpeg", "anchors"),
        PluginEntry("avif", "precodec.plugins.avif", "AvifCodec", "avif"),
        PluginEntry("zstd", "precodec.plugins.zstd", "ZstdCodec", "zstd"),
        PluginEntry("learned", "precodec.plugins.learned", "LearnedCodec", "learned", "learned"),
    )
}

_INSTANCES: dict[str, Any] = {}


def get_codec(name: str) -> "Codec":
    """Return the backend called ``name`` (imported on first use).

    Raises
    ------
    OptionError
        Unknown name.
    MissingDependencyError
        Its optional dependency is not installed (the message names the extra).
    """
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise OptionError(f"unknown backend {name!r}; known: {sorted(REGISTRY)}") from None
    inst = _INSTANCES.get(name)
    if inst is None:
        cls = entry.load()
        if not cls.available():
            hint = f"pip install precodec[{entry.extra}]" if entry.extra else "see `precodec info`"
            raise MissingDependencyError(f"backend {name!r} is not available here: {hint}")
        inst = _INSTANCES[name] = cls()
    return inst


def available_codecs(format: str | None = None) -> list[str]:
    """Names of the backends usable here, optionally only those writing ``format``."""
    out = []
    for name, entry in REGISTRY.items():
        if format is not None and entry.format != format:
            continue
        try:
            if entry.load().available():
                out.append(name)
        except MissingDependencyError:
            continue
    return out


def codec_info() -> list[dict[str, Any]]:
    """One row per backend: name, format, availability, versions, parameter space."""
    rows = []
    for name, entry in REGISTRY.items():
        row: dict[str, Any] = {"name": name, "format": entry.format, "extra": entry.extra}
        try:
            c = get_codec(name)
            row.update(available=True, versions=c.versions(), params=c.space.describe())
        except MissingDependencyError as exc:
            row.update(available=False, reason=str(exc))
        rows.append(row)
    return rows
