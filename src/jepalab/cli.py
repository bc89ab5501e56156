"""The ``jepalab`` command line: one sub-command group per layer, registered from its ``commands`` module.

Every handler takes the parsed ``argparse.Namespace`` and returns an exit code. User errors (bad values,
missing files, invalid configs) print one ``jepalab: error: ...`` line and exit with status 2; pass
``--traceback`` to see the Python traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jepalab import __version__

COMMAND_MODULES = (
    "jepalab.report.commands",
    "jepalab.report.image_commands",
    "jepalab.vision.commands",
    "jepalab.linear.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="jepalab",
        description="JEPA vs MAE: exact theory, deep linear simulator, ViT pretraining, diagnostics, reports.",
    )
    parser.add_argument("--version", action="version", version=f"jepalab {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as error:
        if args.traceback:
            raise
        print(f"jepalab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jepalab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
