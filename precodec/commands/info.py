"""``precodec info``: versions, encoders, models and the kill switch."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="show library versions, encoders, models and the kill switch")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def collect() -> dict[str, Any]:
    """Everything ``precodec info`` shows, as a dict."""
    import numpy
    import PIL

    from .. import config, models
    from .._version import __version__
    from ..plugins import codec_info

    def _dist_version(mod: str) -> str:  # modules without __version__ (constriction): the installed distribution's
        from importlib import metadata

        try:
            return metadata.version({"cv2": "opencv-python-headless"}.get(mod, mod))
        except metadata.PackageNotFoundError:
            return "?"

    libs: dict[str, str] = {"python": platform.python_version(), "numpy": numpy.__version__, "pillow": PIL.__version__}
    for mod in ("cv2", "onnxruntime", "zstandard", "constriction"):
        try:
            m = __import__(mod)
            libs[mod] = getattr(m, "__version__", None) or _dist_version(mod)
        except ImportError:
            libs[mod] = "not installed"
    model_rows = []
    for name in models.list_models():
        m = models.manifest(name)
        model_rows.append({"name": name, "version": m.get("version"), "sha256": m.get("sha256", "")[:16]})
    learned = {"available": False}
    try:
        from ..plugins import REGISTRY

        if "learned" in REGISTRY:
            from ..plugins import get_codec

            get_codec("learned")
            learned["available"] = True
    except Exception as exc:  # report, never fail
        learned["reason"] = str(exc)
    return {
        "precodec": __version__,
        "libraries": libs,
        "encoders": codec_info(),
        "models": model_rows,
        "learned_codec": learned,
        "kill_switch": {"variable": config.KILL_SWITCH_ENV, "on": config.learned_disabled()},
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        json.dump(info, sys.stdout, indent=2, default=str)
        print()
        return 0
    w = sys.stdout.write
    w(f"precodec {info['precodec']}\n\nlibraries:\n")
    for k, v in info["libraries"].items():
        w(f"  {k:<14} {v}\n")
    w("\nencoders:\n")
    for e in info["encoders"]:
        if e["available"]:
            vers = ", ".join(f"{k} {v}" for k, v in e["versions"].items())
            w(f"  {e['name']:<10} {e['format']:<6} yes  ({vers})\n")
        else:
            w(f"  {e['name']:<10} {e['format']:<6} no   ({e['reason']})\n")
    w("\nmodels:\n")
    if not info["models"]:
        w("  (none shipped)\n")
    for m in info["models"]:
        w(f"  {m['name']:<34} v{m['version']}  sha256 {m['sha256']}...\n")
    lc = info["learned_codec"]
    w(f"\nlearned codec (opt-in): {'available' if lc['available'] else 'not available'}\n")
    ks = info["kill_switch"]
    w(f"kill switch {ks['variable']}: {'ON (learned steps disabled)' if ks['on'] else 'off'}\n")
    return 0
