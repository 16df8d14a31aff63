"""Command line: ``snngen cache info`` and ``snngen cache clear``."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__, cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snngen", description="snngen command line")
    parser.add_argument("--version", action="version", version=f"snngen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="inspect or clear the kernel cache")
    c.add_argument("action", choices=["info", "clear"])
    c.add_argument("--json", action="store_true", help="print machine-readable output")
    args = parser.parse_args(argv)
    if args.action == "info":
        info = cache.info()
        if args.json:
            print(json.dumps(info))
        else:
            print(f"cache:       {info['path']}\nkernels:     {info['kernels']}\n"
                  f"entries:     {info['entries']}\nquarantined: {info['quarantined']} "
                  "file(s) (damaged entries moved aside; 'snngen cache clear' removes them)\n"
                  f"size:        {info['bytes'] / 2**20:.1f} MiB")
    else:
        n = cache.clear()
        print(f"removed {n} file(s) from {cache.cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
