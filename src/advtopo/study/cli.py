"""``advtopo run``, ``advtopo check``, ``advtopo runs``, ``advtopo show``, ``advtopo demo``."""
from __future__ import annotations

import argparse
from pathlib import Path

from advtopo.checks import arg_float, arg_int, arg_output_file
from advtopo.study import verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or resume) a study from a TOML config")
    p.add_argument("config", help="study config (TOML); see examples/study.toml")
    p.add_argument("--out", default=None, help="run directory (default: the config's 'output')")
    p.add_argument("--device", default=None, help="auto, cpu, cuda (default: the config's 'device')")
    _executor_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--wait", action="store_true",
                   help="if another process is writing the run directory, wait for it (default: exit at once)")
    p.add_argument("--verify-cache", action="store_true",
                   help="check every cached task's files by SHA-256 before using it (default: by size)")
    p.add_argument("--check", action="store_true",
                   help="only check the config and what it names (as `advtopo check`), run nothing")
    p.set_defaults(func=_run)

    p = sub.add_parser("check", help="check a study config and everything it names, run nothing",
                       description="Every check `advtopo run` makes before its first task: keys, types, values, "
                                   "attack options, train recipes, the dataset and its options, every model and "
                                   "checkpoint (loaded strictly), the layers, the mapper parameters against the "
                                   "sample count, the run directory. Every problem is printed, one line each; "
                                   "exit code 2 when there is any.")
    p.add_argument("config", help="study config (TOML)")
    p.add_argument("--out", default=None, help="run directory to check instead of the config's 'output'")
    p.add_argument("--device", default=None, help="device to check instead of the config's 'device'")
    p.set_defaults(func=_check)

    p = sub.add_parser("runs", help="list run directories and their status")
    p.add_argument("base", nargs="?", default="runs", help="folder holding run directories (default: runs)")
    p.set_defaults(func=_runs)

    p = sub.add_parser("show", help="print a run's summary: accuracy vs eps, graph statistics")
    p.add_argument("run", help="run directory")
    p.set_defaults(func=_show)

    verify.register(sub)  # advtopo verify RUN [--full]

    p = sub.add_parser("export-activations",
                       help="write a run's stored activations (+ per-row metadata) for `advtopo mapper` or other tools")
    p.add_argument("run", help="run directory")
    p.add_argument("--model", required=True)
    p.add_argument("--layer", required=True)
    p.add_argument("--attack", default=None, help="attack name (default: the run's first)")
    p.add_argument("--eps", type=arg_float(0), default=0.0,
                   help="0 = clean activations only; > 0 = clean rows followed by the adversarial rows")
    p.add_argument("--out", required=True, type=arg_output_file, help=".npy file for the N x D (or 2N x D) array")
    p.add_argument("--metadata-out", default=None, type=arg_output_file,
                   help="CSV of per-row sample_id, label, prediction, is_adversarial (default: OUT with .csv)")
    p.set_defaults(func=_export_activations)

    p = sub.add_parser("demo", help="run the built-in MNIST study, then open the web app")
    p.add_argument("--out", default=None, help="run directory (default: runs/demo)")
    p.add_argument("--no-serve", action="store_true", help="do not start the web app (scripts, tests)")
    p.add_argument("--no-report", action="store_true", help="do not write RUN/report/ (advtopo report RUN does)")
    p.add_argument("--train", action="store_true",
                   help="train the four models from scratch (a few minutes on a CPU) instead of using the zoo's")
    p.add_argument("--device", default=None)
    _executor_options(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=arg_int(0, 65535), default=8765)
    p.set_defaults(func=_demo)


def _export_activations(args: argparse.Namespace) -> int:
    """The same point cloud the study's mapper stage uses (clean rows, then adversarial ones)."""
    import numpy as np

    from advtopo.errors import AdvtopoError
    from advtopo.study.results import open_run

    run = open_run(args.run)
    if args.eps < 0:
        raise AdvtopoError(f"--eps {args.eps} must be >= 0")
    clean = run.activations(args.model, args.layer)
    samples = run.samples
    rows = [clean]
    sel = samples[(samples.model == args.model) & ~samples.is_adversarial.astype(bool)].drop_duplicates("sample_id")
    meta = [sel.sort_values("sample_id")]
    if args.eps > 0:
        attack = args.attack or run.index["attacks"][0]["name"]
        rows.append(run.activations(args.model, args.layer, attack, args.eps))
        adv = samples[(samples.model == args.model) & (samples.attack == attack) &
                      ((samples.eps - args.eps).abs() < 1e-9) & samples.is_adversarial.astype(bool)]
        meta.append(adv.sort_values("sample_id"))
    X = np.concatenate(rows)
    import pandas as pd

    md = pd.concat(meta)[["sample_id", "label", "prediction", "is_adversarial"]]
    if len(md) != len(X):
        raise AdvtopoError(f"the sample table has {len(md)} rows for these activations, expected {len(X)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, X)
    meta_out = Path(args.metadata_out) if args.metadata_out else out.with_suffix(".csv")
    md.to_csv(meta_out, index=False)
    print(f"wrote {out} ({X.shape[0]} x {X.shape[1]}) and {meta_out}")
    print(f"next: advtopo mapper {out} --metadata {meta_out} --out graph.json")
    return 0


def _executor_options(p: argparse.ArgumentParser) -> None:
    """Where the tasks run; each option overrides the config's [executor] table."""
    p.add_argument("--executor", default=None, choices=["sequential", "dask"],
                   help="sequential (the default) or dask (a local cluster, or the one --scheduler names)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on an existing Dask cluster (implies --executor dask); the run directory must be "
                        "on storage every worker sees")
    p.add_argument("--workers", type=int, default=None, help="local Dask workers (default: CPU count)")
    p.add_argument("--gpu-resource", default=None, action=argparse.BooleanOptionalAction,
                   help="tasks that use the device ask for a GPU=1 Dask resource (default: when the device is "
                        "cuda and a worker offers one)")


def _executor(args: argparse.Namespace, cfg):
    from advtopo.study.executors import executor_from_config

    return executor_from_config(cfg.executor, kind=args.executor, scheduler=args.scheduler, workers=args.workers,
                                gpu_resource=args.gpu_resource)


def _run(args: argparse.Namespace) -> int:
    from advtopo.study import check_config, format_summary, open_run, run_study

    cfg = check_config(args.config, out=args.out, device=args.device)  # every problem at once, before any work
    if args.check:
        return _checked(args, cfg)
    root = run_study(cfg, out=args.out, executor=_executor(args, cfg), device=args.device, verbose=not args.quiet,
                     wait=args.wait, full_verify=args.verify_cache)
    if not args.quiet:
        print(format_summary(open_run(root)))
    return 0


def _check(args: argparse.Namespace) -> int:
    from advtopo.study import check_config

    return _checked(args, check_config(args.config, out=args.out, device=args.device))


def _checked(args: argparse.Namespace, cfg) -> int:
    n_graphs = len(cfg.models) * len(cfg.layers) * sum(len(a.eps) for a in cfg.attacks) * len(cfg.mapper)
    print(f"{args.config}: no problems found ({len(cfg.models)} models, {len(cfg.attacks)} attacks, "
          f"{len(cfg.layers)} layers, {n_graphs} mapper graphs -> {cfg.output_dir(args.out)})")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from advtopo.errors import AdvtopoError
    from advtopo.study import list_runs

    if Path(args.base).exists() and not Path(args.base).is_dir():
        raise AdvtopoError(f"{args.base} is a file; give the folder holding run directories")

    rows = list_runs(args.base)
    if not rows:
        print(f"no runs under {args.base}")
        return 0
    print(f"{'name':16s} {'status':12s} {'tasks':>9s} {'seconds':>8s}  started                    path")
    for r in rows:
        print(f"{r['name']:16s} {str(r['status']):12s} {r.get('tasks', ''):>9s} {str(r.get('seconds') or ''):>8s}  "
              f"{str(r.get('started') or ''):26s} {r['path']}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from advtopo.study import format_summary, open_run

    print(format_summary(open_run(args.run)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from advtopo.study import demo_config_path, format_summary, load_config, open_run, run_study

    cfg = load_config(demo_config_path(train=args.train))
    root = run_study(cfg, out=args.out, executor=_executor(args, cfg), device=args.device)
    print(format_summary(open_run(root)))
    if not args.no_report:
        from advtopo.report import build_report  # imported here only: the report sits above the study

        print("\nwriting the report (figures reused when their inputs did not change)", flush=True)
        html = build_report(root)
        print(f"report: {html}")
    if args.no_serve:
        print(f"\nresults: {root}  (advtopo show {root}; advtopo report {root}; advtopo serve {root})")
        return 0
    from advtopo.app import serve  # imported here only: the app sits above the study
    print("\nopening the web app (Ctrl-C to stop)", flush=True)
    serve(Path(root), host=args.host, port=args.port)  # prints the URL
    return 0
