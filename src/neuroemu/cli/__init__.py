"""The ``neuroemu`` command line: a thin layer over the Python API.

Each stage registers its subcommands from its own module (``cli/cell.py``, ``cli/dataset.py``,
``cli/emulator.py``, ``cli/study.py``). Errors derived from :class:`neuroemu.errors.NeuroemuError`
are printed as ``error: ...`` with exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

_MODULES = ["neuroemu.cli.cell", "neuroemu.cli.dataset", "neuroemu.cli.emulator", "neuroemu.cli.study"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every stage's subcommands."""
    from neuroemu import __version__

    parser = argparse.ArgumentParser(
        prog="neuroemu",
        description="How much computation does a single neuron do? Simulate a detailed L5 pyramidal cell, "
                    "build datasets, train deep emulators and measure their complexity.",
    )
    parser.add_argument("--version", action="version", version=f"neuroemu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``neuroemu`` console script."""
    from neuroemu.errors import NeuroemuError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        rc = args.func(args)
    except NeuroemuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
