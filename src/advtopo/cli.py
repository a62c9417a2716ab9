"""The ``advtopo`` command. Each pipeline stage registers its own subcommands.

Each stage package with commands has ``<stage>/cli.py`` with ``register(subparsers)``; each
subcommand's handler receives the parsed ``argparse.Namespace`` and returns an exit code.
User errors (:class:`advtopo.errors.AdvtopoError`) print one line and exit with code 2; a
:class:`~advtopo.errors.ConfigErrors` prints one line per problem; an OSError (disk full, no
permission) is one line too.
"""
from __future__ import annotations

import argparse
import os
import sys

from advtopo import __version__
from advtopo.adversarial import cli as adversarial_cli
from advtopo.app import cli as app_cli
from advtopo.data import cli as data_cli
from advtopo.datapaths import cli as datapaths_cli
from advtopo.errors import AdvtopoError, ConfigErrors
from advtopo.mapper import cli as mapper_cli
from advtopo.models import cli as models_cli
from advtopo.models.pretrained import cli as pretrained_cli
from advtopo.persistence import cli as persistence_cli
from advtopo.report import cli as report_cli
from advtopo.study import cli as study_cli

# Order = order in --help: the pipeline from data to the app.
STAGE_CLIS = [data_cli, models_cli, pretrained_cli, adversarial_cli, mapper_cli, persistence_cli, datapaths_cli,
              study_cli, report_cli, app_cli]


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
    for stage_cli in STAGE_CLIS:
        stage_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a bad flag (already printed, one line) or --help/--version: its status
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ConfigErrors as exc:  # every problem found, one line each
        for problem in exc.problems:
            print(f"advtopo {args.command}: error: {problem}", file=sys.stderr)
        return 2
    except AdvtopoError as exc:
        print(f"advtopo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`advtopo zoo | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 1
    except OSError as exc:  # the machine refused (no space left, no permission, a file in the way): not a bug
        print(f"advtopo {args.command}: error: {exc.strerror or exc}"
              + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
