"""Latency against uplink bandwidth for local, JPEG and split inference — the reference paper's figure.

    python examples/latency_vs_bandwidth.py --out out/sweep --relay-points 3

The same as ``splitinf sweep``: a discrete-event sweep over constant rates and every shared Mahimahi trace,
checked against real edge/relay/device processes at a few points (see ``--help``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from splitinf.experiments import sweep


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_arguments(parser)
    return sweep.main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
