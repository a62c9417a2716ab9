"""``advtopo datapaths``: critical datapaths of clean and adversarial inputs of a checkpoint,
compared layer by layer."""
from __future__ import annotations

import argparse

from advtopo.checks import arg_float, arg_float_list, arg_output_file, arg_seed, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datapaths", help="critical datapaths (Cao et al. 2021) of clean vs adversarial inputs, "
                                         "compared layer by layer")
    p.add_argument("--checkpoint", required=True, help="advtopo checkpoint, or a state_dict with --arch")
    p.add_argument("--arch", default=None, help="architecture of a plain state_dict")
    p.add_argument("--dataset", required=True, help="dataset name (see `advtopo datasets`)")
    p.add_argument("--root", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--subset", type=positive_int, default=200, help="stratified subset of N inputs (default 200)")
    p.add_argument("--layers", default="relu1,relu2,relu3",
                   help="comma-separated gated modules (default relu1,relu2,relu3 = lenet5's conv1, conv2, fc1)")
    p.add_argument("--attack", default="pgd", help="fgsm, pgd, ... (default pgd)")
    p.add_argument("--eps", type=arg_float_list(0, 1, lo_open=True), default=[0.1, 0.3],
                   help="comma-separated eps in (0, 1] (default 0.1,0.3)")
    p.add_argument("--attack-steps", type=positive_int, default=20, help="attack steps (pgd; default 20)")
    p.add_argument("--lam", type=float, default=None, help="sparsity weight (default: DatapathExtractor's)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: DatapathExtractor's)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--threshold", type=float, default=0.5, help="gate >= threshold = critical (default 0.5)")
    p.add_argument("--target", default="prediction", help="prediction, label or distribution")
    p.add_argument("--divergence", type=arg_float(0, 1), default=0.5,
                   help="Jaccard below this = diverged (default 0.5)")
    p.add_argument("--top-k", type=positive_int, default=10, help="flow edges kept per layer pair (default 10)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--seed", type=arg_seed, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--out", default=None, type=arg_output_file,
                   help="write the full report (datapaths.json format) here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import time

    from advtopo.adversarial import ATTACKS, create_attack
    from advtopo.data import load_dataset
    from advtopo.datapaths.extract import DatapathExtractor
    from advtopo.datapaths.stage import datapath_report, format_table
    from advtopo.models import load_checkpoint
    from advtopo.utils import atomic_write_json, resolve_device

    ATTACKS.get(args.attack)
    eps_list = args.eps
    kw = {k: getattr(args, k) for k in ("lam", "steps", "lr") if getattr(args, k) is not None}
    layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    device = resolve_device(args.device)
    ext = DatapathExtractor(layers, threshold=args.threshold, target=args.target, batch_size=args.batch_size,
                            seed=args.seed, device=str(device), verbose=not args.quiet, **kw).validate()
    ds = load_dataset(args.dataset, args.split, root=args.root, subset=args.subset, seed=args.seed)
    c, h, _ = ds.image_shape
    model_kw = {} if not args.arch else {"in_channels": c, "input_size": h, "num_classes": ds.num_classes}
    model, _ = load_checkpoint(args.checkpoint, arch=args.arch, **model_kw)
    model.to(device).eval()
    x_adv = {}
    for e in eps_list:
        akw = {"eps": e, "seed": args.seed}
        if args.attack in ("pgd", "pgd_l2"):
            akw["steps"] = args.attack_steps
        try:
            attack = create_attack(args.attack, model, **akw)
        except TypeError:  # attacks without a seed / steps argument
            attack = create_attack(args.attack, model, eps=e)
        x_adv[e] = attack(ds.x.to(device), ds.y.to(device)).detach().cpu()
    t0 = time.perf_counter()
    report = datapath_report(model, ds.x, ds.y.numpy(), x_adv, ext, divergence_threshold=args.divergence,
                             top_k=args.top_k, sample_ids=list(range(len(ds))))
    print(f"{args.checkpoint} on {ds.name}/{args.split} ({len(ds)} inputs), {args.attack}, layers {', '.join(layers)}; "
          f"datapaths in {time.perf_counter() - t0:.1f}s")
    print(format_table(report))
    if args.out:
        atomic_write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0
