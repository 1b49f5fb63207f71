"""The small interface every stock-encoder backend implements.

A backend is a :class:`Codec`: it has a ``name``, a ``format``, a
:class:`ParamSpace` describing its settings (so a tuner can search or predict
over it), ``encode``, ``decode`` and ``versions``.  Parameters are validated
with a plain ``ValueError`` (:class:`~precodec.errors.OptionError`) naming the
bad value.

Example
-------
>>> from precodec.plugins import get_codec
>>> jpeg = get_codec("jpeg")
>>> jpeg.space.validate({"quality": 80})["subsampling"]
'4:2:0'
"""

from __future__ import annotations

import abc
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from ..errors import MissingDependencyError, OptionError

__all__ = ["Param", "ParamSpace", "Codec", "ImageCodec"]


@dataclass(frozen=True)
class Param:
    """One encoder setting.

    Attributes
    ----------
    name : str
    kind : {"int", "choice", "bool"}
    default : Any
    low, high : int, optional
        Inclusive range for ``int``.
    choices : tuple, optional
        Allowed values for ``choice``.
    doc : str
    """

    name: str
    kind: str
    default: Any
    low: int | None = None
    high: int | None = None
    choices: tuple[Any, ...] = ()
    doc: str = ""

    def validate(self, value: Any) -> Any:
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise OptionError(f"{self.name} must be an integer, got {value!r}")
            value = int(value)
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise OptionError(f"{self.name}={value!r} is out of range [{self.low}, {self.high}]")
            return value
        if self.kind == "bool":
            if not isinstance(value, (bool, int)) or value not in (0, 1, True, False):
                raise OptionError(f"{self.name} must be a bool, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise OptionError(f"{self.name}={value!r} is not one of {list(self.choices)}")
            return value
        raise AssertionError(self.kind)

    def values(self) -> list[Any]:
        """Every allowed value (for dense search)."""
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return list(range(self.low, self.high + 1))
        if self.kind == "bool":
            return [False, True]
        return list(self.choices)


@dataclass(frozen=True)
class ParamSpace:
    """An ordered set of :class:`Param`.

    Examples
    --------
    >>> s = ParamSpace((Param("q", "int", 75, 1, 100),))
    >>> s.validate({})
    {'q': 75}
    >>> s.validate({"q": 101})
    Traceback (most recent call last):
    ...
    precodec.errors.OptionError: q=101 is out of range [1, 100]
    """

    params: tuple[Param, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return a complete, validated copy of ``params`` (defaults filled in)."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.names))
        if unknown:
            raise OptionError(f"unknown parameter(s) {unknown}; allowed: {list(self.names)}")
        out = {}
        for p in self.params:
            out[p.name] = p.validate(params[p.name]) if p.name in params else p.default
        return out

    def describe(self) -> list[dict[str, Any]]:
        """JSON-friendly description (for ``precodec info`` and tuners)."""
        rows = []
        for p in self.params:
            row: dict[str, Any] = {"name": p.name, "kind": p.kind, "default": p.default}
            if p.kind == "int":
                row["range"] = [p.low, p.high]
            if p.kind == "choice":
                row["choices"] = list(p.choices)
            if p.doc:
                row["doc"] = p.doc
            rows.append(row)
        return rows


class Codec(abc.ABC):
    """A stock encoder backend.

    Subclasses set the class attributes and implement :meth:`encode`,
    :meth:`decode` and :meth:`versions`.
    """

    name: ClassVar[str]
    format: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    media_type: ClassVar[str] = "application/octet-stream"
    space: ClassVar[ParamSpace]

    @classmethod
    def require(cls) -> None:
        """Import what this backend needs, or raise :class:`MissingDependencyError`
        naming the ``pip install precodec[extra]`` that provides it."""

    @classmethod
    def available(cls) -> bool:
        """True when the libraries this backend needs can be used (:meth:`require` passes)."""
        try:
            cls.require()
        except MissingDependencyError:
            return False
        return True

    @abc.abstractmethod
    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> bytes:
        """Encode ``data`` with ``params`` (validated against :attr:`space`)."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`encode` (or any file of the format)."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Library versions this backend runs on."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<{type(self).__name__} {self.name!r}>"


class ImageCodec(Codec):
    """A backend for images: ``encode(image, params, metadata=...)`` -> bytes.

    ``image`` is a PIL image in mode ``L``, ``RGB`` (``LA``/``RGBA`` where the
    format has alpha) or a numpy array of such pixels; ``decode`` returns a
    PIL image.
    """

    alpha: ClassVar[bool] = False
    subsamplings: ClassVar[Sequence[str]] = ()

    def decode(self, data: bytes) -> Any:
        import io

        from PIL import Image

        from ..errors import EncoderError

        try:
            im = Image.open(io.BytesIO(data))
            im.load()
        except Exception as exc:  # decoder errors vary by plugin
            raise EncoderError(f"{self.name}: cannot decode output ({exc})") from None
        return im
