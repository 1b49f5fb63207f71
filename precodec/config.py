"""Run-time switches read from the environment.

``PRECODEC_DISABLE=1`` (also ``true``, ``yes``, ``on``) is the kill switch: every
learned step (parameter prediction, denoising, learned codec) is turned off and
precodec behaves like the plain encoder path, without code changes.
"""

from __future__ import annotations

import os

__all__ = ["KILL_SWITCH_ENV", "learned_disabled"]

KILL_SWITCH_ENV = "PRECODEC_DISABLE"
_TRUE = {"1", "true", "yes", "on"}


def learned_disabled() -> bool:
    """Return True when the kill switch ``PRECODEC_DISABLE`` is set.

    Read at call time, so tests and long-running services can flip it.

    Examples
    --------
    >>> import os
    >>> os.environ["PRECODEC_DISABLE"] = "1"
    >>> learned_disabled()
    True
    >>> del os.environ["PRECODEC_DISABLE"]
    """
    return os.environ.get(KILL_SWITCH_ENV, "").strip().lower() in _TRUE
