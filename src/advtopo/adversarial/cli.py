"""``advtopo train`` and ``advtopo evaluate``."""
from __future__ import annotations

import argparse
from pathlib import Path

from advtopo.checks import arg_float, arg_float_list, arg_output_dir, arg_output_file, arg_seed, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (standard or adversarial); resumes after interruption")
    p.add_argument("--model", required=True, help="model name (see `advtopo layers --help`), e.g. lenet5")
    p.add_argument("--dataset", required=True, help="dataset name (see `advtopo datasets`), e.g. mnist")
    p.add_argument("--root", default=None, help="dataset folder (cifar10, fashion-mnist, npz file)")
    p.add_argument("--out", required=True, type=arg_output_dir,
                   help="output folder (checkpoint.pt, last.pt, metrics.csv)")
    p.add_argument("--method", default="pgd", help="standard, fgsm, pgd, trades (default pgd)")
    p.add_argument("--eps", type=arg_float(0, 1), default=0.3, help="Linf radius in [0,1] pixel units (default 0.3)")
    p.add_argument("--alpha", type=float, default=None, help="attack step (default 1.25*eps FGSM, 2.5*eps/steps PGD)")
    p.add_argument("--steps", type=positive_int, default=10, help="PGD/TRADES steps in training (default 10)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=float, default=None, help="default 0.1 (sgd) / 1e-3 (adam)")
    p.add_argument("--optimizer", default="adam", help="sgd or adam (default adam)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="constant", help="constant, cosine, multistep, onecycle")
    p.add_argument("--eps-warmup-epochs", type=float, default=0.0, help="ramp eps linearly over this many epochs")
    p.add_argument("--trades-beta", type=float, default=6.0)
    p.add_argument("--seed", type=arg_seed, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--subset", type=positive_int, default=None, help="train on a stratified subset of N images")
    p.add_argument("--eval-subset", type=positive_int, default=1000, help="test images for the per-epoch PGD check")
    p.add_argument("--eval-eps", type=arg_float(0, 1), default=None,
                   help="eps of the per-epoch PGD check (default --eps)")
    p.add_argument("--eval-steps", type=positive_int, default=10)
    p.add_argument("--keep-epochs", action="store_true", help="also keep epoch_NNN.pt checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="clean and adversarial accuracy of a checkpoint over eps values")
    e.add_argument("--checkpoint", required=True, help="advtopo checkpoint, or a .pt/.pth/.safetensors state_dict")
    e.add_argument("--arch", default=None, help="architecture of a plain state_dict (advtopo checkpoints know theirs)")
    e.add_argument("--dataset", required=True)
    e.add_argument("--root", default=None)
    e.add_argument("--split", default="test")
    e.add_argument("--attack", default="pgd", help="fgsm, pgd, pgd_l2, autoattack, apgd, cw (default pgd)")
    e.add_argument("--eps", type=arg_float_list(0), default=[0.0, 0.1, 0.2, 0.3],
                   help="comma-separated eps list (default 0,0.1,0.2,0.3)")
    e.add_argument("--steps", type=positive_int, default=None, help="attack steps (pgd, pgd_l2, apgd)")
    e.add_argument("--alpha", type=arg_float(0, lo_open=True), default=None, help="attack step size (pgd, pgd_l2)")
    e.add_argument("--restarts", type=positive_int, default=None, help="random restarts (pgd, pgd_l2)")
    e.add_argument("--subset", type=positive_int, default=None, help="evaluate on a stratified subset of N images")
    e.add_argument("--batch-size", type=positive_int, default=500)
    e.add_argument("--seed", type=arg_seed, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, type=arg_output_file, help="write the table to .csv or .json")
    e.set_defaults(func=_evaluate)


def _train(args: argparse.Namespace) -> int:
    from advtopo.adversarial.training import TrainConfig, train_model
    from advtopo.data import load_dataset
    from advtopo.models import MODELS

    MODELS.get(args.model)
    cfg = TrainConfig(method=args.method, eps=args.eps, alpha=args.alpha, steps=args.steps, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
                      weight_decay=args.weight_decay, schedule=args.schedule,
                      eps_warmup_epochs=args.eps_warmup_epochs, trades_beta=args.trades_beta, seed=args.seed,
                      device=args.device, amp_bf16=args.bf16, channels_last=args.channels_last,
                      compile=args.compile, train_subset=args.subset, eval_subset=args.eval_subset,
                      eval_eps=args.eval_eps, eval_steps=args.eval_steps, keep_epochs=args.keep_epochs)
    train = load_dataset(args.dataset, "train", root=args.root)
    test = load_dataset(args.dataset, "test", root=args.root)
    res = train_model(args.model, train, test, cfg, args.out, quiet=args.quiet)
    m = res["metrics"]
    if m:
        print(f"{res['checkpoint']}: clean {m['clean_acc']:.4f}, pgd@{m['eval_eps']:g} {m['pgd_acc']:.4f} "
              f"on {m['eval_n']} test images")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from advtopo.adversarial.attacks import ATTACKS
    from advtopo.adversarial.evaluate import check_input, evaluate
    from advtopo.data import load_dataset
    from advtopo.errors import AdvtopoError
    from advtopo.models import MODELS, load_checkpoint
    from advtopo.utils import atomic_write_json, atomic_write_text, resolve_device

    ATTACKS.get(args.attack)
    if args.arch:
        MODELS.get(args.arch)
    eps_list = args.eps
    if args.out and Path(args.out).suffix not in (".csv", ".json"):
        raise AdvtopoError(f"--out {args.out!r} must end in .csv or .json")
    ds = load_dataset(args.dataset, args.split, root=args.root)
    if args.subset is not None:
        ds = ds.subset(args.subset, seed=args.seed)
    c, h, _ = ds.image_shape
    model_kw = {} if not args.arch else {"in_channels": c, "input_size": h, "num_classes": ds.num_classes}
    model, config = load_checkpoint(args.checkpoint, arch=args.arch, verbose=True, **model_kw)
    device = resolve_device(args.device)
    model.to(device)
    check_input(model, ds, device)
    kw = {k: getattr(args, k) for k in ("steps", "alpha", "restarts") if getattr(args, k) is not None}
    df = evaluate(model, ds, attack=args.attack, eps_list=eps_list, batch_size=args.batch_size,
                  attack_kwargs=kw, device=device, seed=args.seed)
    df.insert(0, "model", config.get("arch", args.arch))
    print(f"{args.checkpoint} on {ds.name}/{args.split} ({len(ds)} images), attack {args.attack} {kw or ''}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        if args.out.endswith(".csv"):
            atomic_write_text(args.out, df.to_csv(index=False))
        else:
            atomic_write_json(args.out, {"checkpoint": str(args.checkpoint), "dataset": ds.name,
                                         "split": args.split, "rows": df.to_dict(orient="records")})
        print(f"wrote {args.out}")
    return 0
