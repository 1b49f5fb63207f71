"""The ``precodec`` command line (also ``python -m precodec``).

Subcommands live in :mod:`precodec.commands`, one module each, listed in
:data:`COMMANDS`; each module has ``add_parser(subparsers)`` and ``run(args) -> int``.
Bad input never ends in a traceback: a :class:`~precodec.errors.PrecodecError`
prints one line ``precodec: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ._version import __version__
from .errors import PrecodecError

__all__ = ["main", "COMMANDS", "build_parser"]

#: subcommand name -> module; the order is the order of ``precodec --help``
COMMANDS: dict[str, str] = {
    "demo": "precodec.commands.demo",
    "optimize": "precodec.commands.optimize",
    "gate": "precodec.commands.gate",
    "zstd": "precodec.commands.zstd",
    "info": "precodec.commands.info",
}

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="precodec",
        description="Smaller JPEG, AVIF and Zstd files with stock decoders.",
    )
    parser.add_argument("--version", action="version", version=f"precodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:  # command not shipped in this build
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except PrecodecError as exc:
        print(f"precodec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("precodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `precodec info | head`
        return EXIT_OK
