"""``advtopo datasets``: what is available, its options and where it comes from."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list datasets, their options, sources and licences")
    p.add_argument("--check", action="store_true", help="also try loading each test split")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from advtopo.data import DATASETS, SOURCES, dataset_options, load_dataset
    from advtopo.errors import AdvtopoError

    for name in DATASETS.names():
        status = ""
        if args.check:
            try:
                ds = load_dataset(name, "test")
                status = f"  [ok: {len(ds)} test images, shape {tuple(ds.image_shape)}]"
            except AdvtopoError as exc:
                status = f"  [unavailable: {exc}]"
        print(f"{name:14s} {DATASETS.help(name)}{status}")
        print(f"{'':14s} source: {SOURCES.get(name, '')}")
        opts = dataset_options(name)
        if opts:
            print(f"{'':14s} options: {', '.join(f'{k}={v!r}' for k, v in opts.items())}")
    return 0
