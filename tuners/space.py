"""The parameter space precodec's tuners search and predict over.

A *configuration* fixes everything but ``quality``: a backend plus its
discrete settings (chroma subsampling, progressive scans).  The oracle, the
bisection baseline and the learned predictor all work per configuration and
pick the configuration whose smallest passing quality gives the fewest bytes.

Frozen tables: the learned predictor's outputs are laid out in the order of
:data:`SCORE_CONFIGS` / :data:`BYTES_CONFIGS` per format and on the quality
grids in :data:`GRIDS`; changing them needs a retrained model.

Example
-------
>>> [c.name for c in configs_for("jpeg", backends=("jpeg",))]
['jpeg:444', 'jpeg:444p', 'jpeg:420', 'jpeg:420p']
>>> config("mozjpeg:420").params
{'subsampling': '4:2:0'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["Config", "CONFIGS", "GRIDS", "SCORE_CONFIGS", "BYTES_CONFIGS", "config", "configs_for",
           "PLAIN_CONFIG"]


@dataclass(frozen=True)
class Config:
    """One point of the discrete part of the space.

    Attributes
    ----------
    name : str
        ``"<backend>:<settings>"``, e.g. ``"jpeg:420p"``.
    backend : str
        Codec backend name (:func:`precodec.plugins.get_codec`).
    format : str
    params : dict
        Settings besides ``quality``.
    pixels_as : str
        Name of the configuration that decodes to the same pixels (progressive
        scans change bytes, not pixels), so scores can be shared.
    """

    name: str
    backend: str
    format: str
    params: dict[str, Any] = field(default_factory=dict)
    pixels_as: str = ""

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def score_name(self) -> str:
        return self.pixels_as or self.name


_S444 = {"subsampling": "4:4:4"}
_S420 = {"subsampling": "4:2:0"}

CONFIGS: dict[str, Config] = {c.name: c for c in (
    Config("jpeg:444", "jpeg", "jpeg", {**_S444, "progressive": False, "optimize": True}),
    Config("jpeg:444p", "jpeg", "jpeg", {**_S444, "progressive": True, "optimize": True}, pixels_as="jpeg:444"),
    Config("jpeg:420", "jpeg", "jpeg", {**_S420, "progressive": False, "optimize": True}),
    Config("jpeg:420p", "jpeg", "jpeg", {**_S420, "progressive": True, "optimize": True}, pixels_as="jpeg:420"),
    Config("mozjpeg:444", "mozjpeg", "jpeg", dict(_S444)),
    Config("mozjpeg:420", "mozjpeg", "jpeg", dict(_S420)),
    Config("jpegli:420", "jpegli", "jpeg", {}),
    Config("avif:444", "avif", "avif", {**_S444, "speed": 6}),
    Config("avif:420", "avif", "avif", {**_S420, "speed": 6}),
)}

#: the usual setting, and what the plain path (bisection, kill switch) searches
PLAIN_CONFIG = {"jpeg": "jpeg:420", "avif": "avif:420", "mozjpeg": "mozjpeg:420", "jpegli": "jpegli:420"}

#: quality grids the predictor's curves are sampled on (frozen with the model)
GRIDS: dict[str, tuple[int, ...]] = {
    "jpeg": (40, 55, 65, 73, 80, 85, 89, 92, 95, 97),
    "avif": (35, 50, 62, 72, 80, 86, 91, 95),
}

#: per format, configurations with their own score curve (model output order)
SCORE_CONFIGS: dict[str, tuple[str, ...]] = {
    "jpeg": ("jpeg:444", "jpeg:420", "mozjpeg:444", "mozjpeg:420", "jpegli:420"),
    "avif": ("avif:444", "avif:420"),
}
#: per format, configurations with their own size curve (model output order)
BYTES_CONFIGS: dict[str, tuple[str, ...]] = {
    "jpeg": ("jpeg:444", "jpeg:444p", "jpeg:420", "jpeg:420p", "mozjpeg:444", "mozjpeg:420", "jpegli:420"),
    "avif": ("avif:444", "avif:420"),
}


def config(name: str) -> Config:
    """The configuration called ``name``."""
    from ..errors import OptionError

    try:
        return CONFIGS[name]
    except KeyError:
        raise OptionError(f"unknown configuration {name!r}; known: {sorted(CONFIGS)}") from None


def configs_for(format: str, *, backends: Iterable[str] | None = None,
                fixed: Mapping[str, Any] | None = None) -> list[Config]:
    """Configurations of ``format`` using ``backends`` and consistent with ``fixed`` settings.

    A configuration is kept when every fixed setting either equals its own
    value or is a setting its backend has and the configuration leaves free.
    """
    from ..plugins import get_codec

    fixed = dict(fixed or {})
    out = []
    for c in CONFIGS.values():
        if c.format != format or (backends is not None and c.backend not in backends):
            continue
        space = get_codec(c.backend).space
        ok = True
        for k, v in fixed.items():
            if k == "quality":
                continue
            if k in c.params:
                ok = ok and c.params[k] == v
            else:
                ok = ok and k in space
        if ok:
            out.append(c)
    return out
