"""The ``jepalab`` command line: one sub-command group per layer, registered from its ``commands`` module.

Every handler takes the parsed ``argparse.Namespace`` and returns an exit code. User errors (bad values,
missing files, invalid configs) print one ``jepalab: error: ...`` line and exit with status 2; pass
``--traceback`` to see the Python traceback instead. A command whose ``[CONFIG] key=value`` positional has one of
the ``OVERRIDE_DESTS`` names accepts its ``key=value`` overrides anywhere on the line, before or after options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jepalab import __version__

COMMAND_MODULES = (
    "jepalab.report.commands",
    "jepalab.vision.commands",
    "jepalab.linear.commands",
)
OVERRIDE_DESTS = ("items", "set")  # the dest of every nargs="*" `[CONFIG] key=value` positional


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


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` that also takes ``key=value`` overrides after options (argparse's subparsers stop
    collecting a positional list at the first option); anything else unknown is an error as usual."""
    args, extras = parser.parse_known_args(argv)
    dest = next((d for d in OVERRIDE_DESTS if isinstance(getattr(args, d, None), list)), None)
    unknown = [e for e in extras if dest is None or e.startswith("-") or "=" not in e]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extras:
        getattr(args, dest).extend(extras)
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)
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
