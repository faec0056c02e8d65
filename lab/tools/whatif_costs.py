"""Write a *hypothetical* split into a saved cost file, to ask ``splitinf bench adaptive`` which bottleneck
``--mode auto`` would need before anyone trains it (run by hand).

Reads a file written by ``splitinf bench adaptive --save-costs`` (with one split), scales the split's device
times so that their mean is ``--head-ms`` and sets its uplink bytes to ``--bytes`` (edge time and the other
modes as measured), and names the mode after what it is, so that no table mistakes it for a trained
checkpoint:

    .venv/bin/python lab/tools/whatif_costs.py docs/sweep/costs.json OUT.json --head-ms 60 --bytes 1300
    .venv/bin/splitinf bench adaptive --costs OUT.json --seeds 4 --json
"""

import argparse
import json
from pathlib import Path


def whatif(saved: dict, head_ms: float | None, uplink_bytes: int | None) -> dict:
    """The saved costs with their split mode replaced by the hypothetical one."""
    costs = []
    for cost in saved["costs"]:
        if cost["name"].startswith("split"):
            scale = head_ms / cost["device_ms"] if head_ms is not None else 1.0
            uplink_bytes_now = uplink_bytes if uplink_bytes is not None else cost["uplink_bytes"]
            cost = {**cost, "name": f"split:whatif_{cost['device_ms'] * scale:.0f}ms_{uplink_bytes_now}B",
                    "device_ms": cost["device_ms"] * scale, "uplink_bytes": uplink_bytes_now,
                    "device_samples_ms": [t * scale for t in cost["device_samples_ms"]]}
        costs.append(cost)
    return {**saved, "costs": costs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a cost file written by splitinf bench adaptive --save-costs")
    parser.add_argument("out", type=Path, help="where to write the hypothetical costs")
    parser.add_argument("--head-ms", type=float, help="the split's mean device time (its spread scaled with it)")
    parser.add_argument("--bytes", type=int, help="the split's uplink bytes per frame")
    args = parser.parse_args()
    saved = json.loads(args.source.read_text())
    splits = [c["name"] for c in saved["costs"] if c["name"].startswith("split")]
    if len(splits) != 1:  # several would all get the same hypothetical name
        parser.error(f"{args.source} needs exactly one split mode to change, it has {len(splits)}: {splits}")
    args.out.write_text(json.dumps(whatif(saved, args.head_ms, args.bytes), indent=1))


if __name__ == "__main__":
    main()
