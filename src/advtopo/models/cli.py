"""``advtopo layers SPEC``: a model's named layers, output shapes and capture notes."""
from __future__ import annotations

import argparse

from advtopo.checks import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="list a model's named layers with output shapes (any model spec)",
                       description="SPEC is a registry name (advtopo layers --list), 'package.module:factory' or "
                                   "'path/to/file.py:factory'. Layers are named by dotted module path; the notes "
                                   "column flags reused modules (not capturable), in-place ops and blocks.")
    p.add_argument("model", nargs="?", default=None, metavar="SPEC",
                   help="registry name, package.module:factory or path/to/file.py:factory")
    p.add_argument("--list", action="store_true", help="list the registry's architectures and exit")
    p.add_argument("--arch-kwargs", default=None, help='JSON object passed to the factory, e.g. \'{"depth": 16}\'')
    p.add_argument("--input-shape", default=None,
                   help="C,H,W (default: 1,28,28 for MNIST nets, 3,32,32 for CIFAR nets and external specs)")
    p.add_argument("--num-classes", type=positive_int, default=None, help="classes (registry models; default 10)")
    p.add_argument("--checkpoint", default=None,
                   help="load weights (advtopo checkpoint, .pt/.pth state_dict, .safetensors or zoo:NAME)")
    p.add_argument("--mean", default=None, help="input normalisation mean, comma-separated (needs --std)")
    p.add_argument("--std", default=None, help="input normalisation std, comma-separated (needs --mean)")
    p.set_defaults(func=_run)


def _floats(flag: str, text: str | None) -> list[float] | None:
    from advtopo.errors import AdvtopoError

    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise AdvtopoError(f"{flag} {text!r} must be comma-separated numbers, e.g. 0.4914,0.4822,0.4465") from None


def _run(args: argparse.Namespace) -> int:
    import json

    from advtopo.errors import AdvtopoError
    from advtopo.models import MODELS, build_model, format_layers, list_layers
    from advtopo.models.robust import INPUT_SHAPES

    if args.list or args.model is None:
        if args.model is None and not args.list:
            raise AdvtopoError("give a model SPEC (registry name, package.module:factory or path/to/file.py:factory) "
                               "or --list")
        for name in MODELS.names():
            print(f"{name:22s} {MODELS.help(name)}")
        return 0
    kwargs = {}
    if args.arch_kwargs:
        try:
            kwargs = json.loads(args.arch_kwargs)
        except ValueError as exc:
            raise AdvtopoError(f"--arch-kwargs is not valid JSON ({exc}); give an object like '{{\"depth\": 16}}'") from None
        if not isinstance(kwargs, dict):
            raise AdvtopoError(f"--arch-kwargs must be a JSON object, got {type(kwargs).__name__}")
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
            assert len(shape) == 3 and min(shape) > 0
        except (ValueError, AssertionError):
            raise AdvtopoError(f"--input-shape {args.input_shape!r} must be three positive integers C,H,W") from None
    elif ":" not in args.model:
        MODELS.get(args.model)
        shape = INPUT_SHAPES.get(args.model, (1, 28, 28))
    else:
        shape = (3, 32, 32)
    registry = ":" not in args.model
    model, info = build_model(args.model, kwargs, checkpoint=args.checkpoint,
                              mean=_floats("--mean", args.mean), std=_floats("--std", args.std),
                              num_classes=args.num_classes if registry else args.num_classes,
                              in_channels=shape[0] if registry else None,
                              input_size=shape[1] if registry else None)
    infos = list_layers(model, shape)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} on input {shape}: {n_params:,d} parameters")
    if info["checkpoint"]:
        how = f", translated as {info['translation']}" if info["translation"] else ""
        print(f"weights: {info['checkpoint']} (sha256 {info['sha256'][:12]}{how})")
    if info["mean"] is not None:
        print(f"input normalisation ({info['normalization_source']}): mean {info['mean']}, std {info['std']}")
    print(format_layers(infos))
    if any(i.reused for i in infos):
        print("REUSED: one module object runs several times per forward; it cannot be captured "
              "(give each use its own module).")
    if any(i.overwritten for i in infos):
        print("overwritten later: an in-place op changes this output after it is returned; capture copies it "
              "first, so the captured values are this module's own output.")
    return 0
