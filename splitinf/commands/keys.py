"""``splitinf keys``: CurveZMQ key pairs for an authenticated edge and its devices.

    splitinf keys --out keys/ --device cam1 --device cam2
    splitinf-edge --auth keys/ ...                                        # the edge: keys/edge.key_secret
    splitinf-device --key keys/cam1.key_secret --server-key keys/edge.key ...

Copy ``edge.key`` and one ``NAME.key_secret`` to each device; keep ``edge.key_secret`` on the edge. The edge
serves only devices whose public key is in ``keys/clients/``.
"""

from __future__ import annotations

import argparse

from splitinf.report import print_json_line
from splitinf.runtime.transport import generate_keys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the keys into")
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="a camera device to make a key pair for (repeatable; default one named 'device')")
    parser.add_argument("--json", action="store_true", help="print the key files written as one JSON line last")


def main(args: argparse.Namespace) -> int:
    made = generate_keys(args.out, args.device or ["device"])
    for name, secret in made.items():
        print(f"{name}: secret {secret}, public {secret.with_suffix('.key')}")
    if args.json:
        print_json_line({name: {"secret": str(secret), "public": str(secret.with_suffix(".key"))}
                         for name, secret in made.items()})
    return 0
