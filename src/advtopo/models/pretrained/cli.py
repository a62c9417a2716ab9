"""``advtopo zoo``: the shipped checkpoints and their measured accuracies."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="list the shipped pretrained checkpoints (use them as checkpoint = 'zoo:NAME')")
    p.add_argument("name", nargs="?", help="show one entry in full (recipe, hashes, every accuracy)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_zoo)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _zoo(args: argparse.Namespace) -> int:
    from advtopo.models.pretrained import get_pretrained, list_pretrained

    if args.name:
        e = get_pretrained(args.name)
        print(json.dumps(e.raw, indent=1))
        return 0
    entries = list_pretrained()
    if args.json:
        print(json.dumps([e.raw for e in entries], indent=1))
        return 0
    if not entries:
        print("no zoo checkpoints are installed")
        return 0
    head = f"{'name':<26} {'arch':<7} {'dataset':<14} {'train eps':>9} {'clean %':>7} {'PGD-40 %':>8} {'5 restarts %':>12} {'AutoAttack %':>12}"
    print(head)
    print("-" * len(head))
    for e in entries:
        acc = e.accuracy
        full = acc.get("pgd40_train_eps_full") or {}
        pgd = _pct(full.get("restarts1")) if full else "-"
        grid = {r["eps"]: r for r in (acc.get("pgd40_grid") or {}).get("rows", [])}
        r5 = _pct(grid[e.train_eps]["restarts5"]) if e.train_eps in grid else "-"
        aa = acc.get("autoattack") or {}
        print(f"{'zoo:' + e.name:<26} {e.arch:<7} {e.dataset:<14} {e.train_eps:>9g} {_pct(acc.get('clean')):>7} "
              f"{pgd:>8} {r5:>12} {_pct(aa.get('accuracy')):>12}")
    print("\nclean and PGD-40 (step 0.01, at the training eps): full test set; 5 restarts: a stratified test "
          "subset; AutoAttack (standard): a smaller subset. `advtopo zoo NAME` shows the recipe, the eps grid, "
          "subset sizes and the SHA-256; docs/zoo.md explains the protocol")
    return 0
