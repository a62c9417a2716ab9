"""``advtopo layers MODEL``: named layers with output shapes."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="list a model's named layers with output shapes")
    p.add_argument("model", help="model name from the registry (lenet5, cff, smallcnn, resnet18, preact_resnet18)")
    p.add_argument("--input-shape", default=None, help="C,H,W (default: 1,28,28; 3,32,32 for resnets)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--checkpoint", default=None, help="load weights (advtopo checkpoint, .pt/.pth or .safetensors)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from advtopo.errors import AdvtopoError
    from advtopo.models import MODELS, create_model, layer_shapes, load_checkpoint

    MODELS.get(args.model)  # unknown name -> error listing the allowed ones
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
            assert len(shape) == 3 and min(shape) > 0
        except (ValueError, AssertionError):
            raise AdvtopoError(f"--input-shape {args.input_shape!r} must be three positive integers C,H,W") from None
    else:
        shape = (3, 32, 32) if "resnet" in args.model else (1, 28, 28)
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint, arch=args.model, verbose=True,
                                   in_channels=shape[0], input_size=shape[1], num_classes=args.num_classes)
    else:
        model = create_model(args.model, num_classes=args.num_classes, in_channels=shape[0], input_size=shape[1])
    print(f"{args.model} on input {shape}:")
    print(f"{'layer':28s} {'type':18s} output shape")
    for name, kind, out in layer_shapes(model, shape):
        print(f"{name:28s} {kind:18s} {tuple(out)}")
    return 0
