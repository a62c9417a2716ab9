"""``advtopo report RUN [--out DIR]``."""
from __future__ import annotations

import argparse

from advtopo.checks import arg_output_dir


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="the papers' claims measured on a run: one HTML page, figures, findings.json",
        description="Write RUN/report/ (or --out): report.html (self-contained, opens offline), figures/ "
                    "(every figure as PNG and SVG) and findings.json (every number shown, with each verdict). "
                    "Re-running redraws only figures whose inputs changed.")
    p.add_argument("run_dir", metavar="RUN", help="a run directory (holds index.json)")
    p.add_argument("--out", metavar="DIR", default=None, type=arg_output_dir,
                   help="output folder (default: RUN/report)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    import json

    from advtopo.report import FINDINGS_FILE, build_report

    page = build_report(args.run_dir, args.out, quiet=args.quiet)
    findings = json.loads((page.parent / FINDINGS_FILE).read_text())
    errors = [s["key"] for s in findings["sections"] if s["status"] == "error"]
    if errors:
        print(f"advtopo report: {len(errors)} section(s) could not be computed: {', '.join(errors)}")
        return 1
    return 0
