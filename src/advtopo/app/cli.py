"""``advtopo serve RUN_DIR`` and ``advtopo export-html RUN_DIR OUT.html``."""
from __future__ import annotations

import argparse
import signal


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="explore a run directory in the browser (local web app)",
                              description="Serve the interactive app for RUN_DIR on 127.0.0.1 (loopback only "
                                          "unless --host says otherwise) and open it in the browser.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds index.json)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser, just print the URL")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--workers", type=int, default=32,
                   help="threads answering requests (default 32: a browser plus scripts)")
    p.add_argument("--cache-files", type=int, default=1000,
                   help="most entries each app cache (featurevis, embedding, recompute) keeps (default 1000)")
    p.add_argument("--cache-mb", type=float, default=256,
                   help="most megabytes each app cache keeps; least recently used go first (default 256)")
    p.set_defaults(func=_serve)

    e = subparsers.add_parser("export-html", help="write the app with its data as one offline HTML file",
                              description="Write one self-contained HTML file (data, code, thumbnails inline) "
                                          "that opens offline in any browser.")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("out", metavar="OUT_HTML")
    e.add_argument("--graphs", default="", help="comma-separated graph ids (default: all graphs)")
    e.add_argument("--no-images", action="store_true", help="leave the thumbnails out (smaller file)")
    e.set_defaults(func=_export)


def _serve(args: argparse.Namespace) -> int:
    from advtopo.errors import AdvtopoError

    from .cache import CacheLimits
    from .server import serve

    if not 0 <= args.port <= 65535:
        raise AdvtopoError(f"--port={args.port} is not a port number (0..65535)")
    if not 1 <= args.workers <= 1024:
        raise AdvtopoError(f"--workers={args.workers} must be from 1 to 1024")
    if not args.cache_files >= 1:
        raise AdvtopoError(f"--cache-files={args.cache_files} must be at least 1")
    if not (args.cache_mb >= 0.001 and args.cache_mb < 2**40):  # also refuses nan and inf
        raise AdvtopoError(f"--cache-mb={args.cache_mb} must be a positive number of megabytes")
    limits = CacheLimits(max_files=args.cache_files, max_bytes=int(args.cache_mb * 2**20))
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops it like Ctrl-C: the session file is removed
    serve(args.run_dir, host=args.host, port=args.port, open_browser=not args.no_browser, block=True,
          quiet=not args.verbose, workers=args.workers, cache_limits=limits)
    return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _export(args: argparse.Namespace) -> int:
    from .export import export_html

    ids = [g for g in args.graphs.split(",") if g] or None
    out = export_html(args.run_dir, args.out, graph_ids=ids, images=not args.no_images)
    print(f"advtopo: wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
