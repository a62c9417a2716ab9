"""The ``advtopo`` command. Each pipeline stage registers its own subcommands.

Every stage package may provide ``<stage>/cli.py`` with ``register(subparsers)``; each
subcommand's handler receives the parsed ``argparse.Namespace`` and returns an exit code.
User errors (:class:`advtopo.errors.AdvtopoError`) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from advtopo import __version__
from advtopo.errors import AdvtopoError

# Order = order in --help. Missing modules are skipped so stages can land independently.
STAGE_CLIS = [
    "advtopo.data.cli",
    "advtopo.models.cli",
    "advtopo.models.pretrained.cli",
    "advtopo.adversarial.cli",
    "advtopo.activations.cli",
    "advtopo.mapper.cli",
    "advtopo.persistence.cli",
    "advtopo.datapaths.cli",
    "advtopo.study.cli",
    "advtopo.report.cli",
    "advtopo.app.cli",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="advtopo",
        description="Adversarial attacks and adversarial training seen through the topology of activations: "
                    "train, attack, capture, mapper graphs, persistent homology, and a local web app.",
        epilog="Start with `advtopo demo`; a whole study is `advtopo run study.toml` (see examples/study.toml).")
    parser.add_argument("--version", action="version", version=f"advtopo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod_name in STAGE_CLIS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except AdvtopoError as exc:
        print(f"advtopo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
