"""``splitinf bench rate``: rate–accuracy of the trained bottlenecks against the best JPEG offload, on the
482 COCO images (person AP, the eval harness's default for the person model), all in one run.

* ``jpeg``: the smallest JPEG (original or 300×300 resolution) within 1 AP point of the unsplit teacher;
* ``accurate``: the smallest checkpoint within 1 AP point sending ≤ 1/10 of that JPEG's bytes;
* ``light``: the most accurate checkpoint whose device head (encoder included, resize excluded) costs
  ≤ 40 % of the unsplit multiply-adds, within 2.5 AP points, also ≤ 1/10 of the bytes;
* ``stretch``: one checkpoint within 1 AP point, ≤ 1/20 of the bytes and ≤ 25 % of the MACs.

Each checkpoint also reports its head's milliseconds on this CPU next to the unsplit model's (same run).

A variable-rate checkpoint (``splitinf train --rate-targets``) is scored at every one of its rates, with real
bitstreams of each, and reported as ``variable_rate``: ``{checkpoint, points: [{rate, bytes, ap, ap50,
overhead_ratio}]}``, where ``overhead_ratio`` is the range-coded payload over the cross-entropy of its symbols
under that rate's tables (on the first 64 images).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from splitinf.bottleneck import CheckpointError, MinMax8Codec, load_for, read_checkpoint
from splitinf.bottleneck.bitstream import HEADER
from splitinf.data import ALL_UNION, PERSON_VIDEO, coco_images, read_image, resolve, video_frames
from splitinf.evaluation.harness import evaluate_coco
from splitinf.evaluation.pipelines import jpeg, split, unsplit
from splitinf.experiments.costs import median_ms
from splitinf.head import Head
from splitinf.models import build_detector, detector_spec
from splitinf.models.compute import count_macs
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.weights.checkpoints import find_checkpoint, record_metadata, shipped_checkpoints, shipped_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite_mobilenet_v2_person",
                        help="the detector the bottlenecks belong to (default %(default)s)")
    bottleneck = parser.add_argument("--bottleneck", action="append", default=[], metavar="CKPT",
                                     help="bottleneck checkpoint to score, a file or a name (repeatable; default: "
                                          "the shipped checkpoints of the model)")
    deprecated_alias(parser, bottleneck, "--checkpoint")
    parser.add_argument("--qualities", default="50,75,90", help="JPEG qualities to search (default 50,75,90)")
    images = parser.add_argument("--images", type=int, default=None, metavar="N",
                                 help="only the first N images (quick look; default: all 482)")
    deprecated_alias(parser, images, "--limit")
    parser.add_argument("--plot", default=None, help="write the AP-vs-KB/frame plot here (PNG)")
    parser.add_argument("--record", action="store_true",
                        help="write each --bottleneck's measured AP and bytes (per rate), the teacher's and the "
                             "JPEGs' into its metadata, where --max-ap-drop of splitinf bench adaptive, sweep and "
                             "the device's auto read them (not into shipped checkpoints)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


@dataclass(frozen=True)
class Target:
    """What a checkpoint must reach to count as one of the issue's points, and which one wins among many."""

    ap_drop: float  # at most this far below the teacher's AP
    bytes_ratio: float  # at most this share of the best JPEG's bytes
    macs_ratio: float  # device head at most this share of the unsplit model's multiply-adds
    prefer: str  # "bytes": the smallest qualifying checkpoint wins; "ap": the most accurate one


TARGETS = {
    "accurate": Target(ap_drop=0.01, bytes_ratio=0.1, macs_ratio=1.0, prefer="bytes"),
    "light": Target(ap_drop=0.025, bytes_ratio=0.1, macs_ratio=0.40, prefer="ap"),
    "stretch": Target(ap_drop=0.01, bytes_ratio=0.05, macs_ratio=0.25, prefer="bytes"),
}


def pick(points: list[dict], teacher_ap: float, target: Target) -> dict | None:
    """The checkpoint point meeting ``target`` (None when none does, or when there is no JPEG to compare)."""
    ok = [p for p in points if p["ap"] >= teacher_ap - target.ap_drop and p["bytes_ratio"] is not None
          and p["bytes_ratio"] <= target.bytes_ratio and p["head_macs_ratio"] <= target.macs_ratio]
    if not ok:
        return None
    return min(ok, key=lambda p: p["bytes"]) if target.prefer == "bytes" else max(ok, key=lambda p: p["ap"])


def rate_name(name: str, rate: int, rates: int) -> str:
    """A checkpoint's pipeline name, with its rate for a variable-rate one."""
    return f"{name} rate {rate}" if rates > 1 else name


def coding_overhead(head: Head, bottleneck, images: list) -> list[float]:
    """Per rate: range-coded payload bytes (header and rate index excluded) over the cross-entropy of the
    symbols under that rate's tables, summed over ``images``."""
    codecs = [bottleneck.codec(r) for r in range(bottleneck.config.rates)]
    payload, ideal = [0] * len(codecs), [0.0] * len(codecs)
    with torch.inference_mode():
        for image in images:
            latent = head([read_image(image.path)])[0][0]
            for r, codec in enumerate(codecs):
                payload[r] += len(codec.compress(latent)) - HEADER.size - 1
                ideal[r] += codec.tables[r].cross_entropy_bits(codec.symbols(latent)) / 8
    return [round(p / i, 5) for p, i in zip(payload, ideal)]


def committed_bottlenecks(model: str) -> list[str]:
    """The shipped bottleneck checkpoints made for ``model`` (prefilters ship beside them)."""
    paths = []
    for path in shipped_checkpoints():
        try:
            if read_checkpoint(path)["config"].get("model") == model:
                paths.append(str(path))
        except CheckpointError:
            continue
    return paths


def main(args: argparse.Namespace) -> int:
    detector = build_detector(args.model, weights=detector_spec(args.model).default_weights)
    paths = [str(find_checkpoint(c)) for c in args.bottleneck] or committed_bottlenecks(args.model)
    bottlenecks = {Path(p).stem: load_for(p, detector) for p in paths}
    pipelines = [unsplit(detector)]
    for resolution in ("original", "input"):
        pipelines += [jpeg(detector, int(q), resolution) for q in args.qualities.split(",")]
    pipelines += [split(detector, MinMax8Codec(), split_point=s, name=f"8-bit {s}") for s in ("s8", "s16")]
    for name, b in bottlenecks.items():
        pipelines += [split(detector, b.codec(r), bottleneck=b, name=rate_name(name, r, b.config.rates))
                      for r in range(b.config.rates)]
    ground_truth = json.loads(resolve(ALL_UNION).read_text())
    images = coco_images(ALL_UNION, limit=args.images)
    scores = {s.pipeline.name: s for s in evaluate_coco(pipelines, ground_truth, images, [1])}

    frames = list(video_frames(PERSON_VIDEO, max_frames=5, step=200))
    x, geometries = detector.preprocess(frames[:1])
    total_macs = count_macs(lambda: detector.detect(detector.neck(detector.trunk(x)), geometries))
    unsplit_ms = median_ms(lambda f: detector([f]), frames, repeats=3)
    teacher = scores["unsplit"]
    jpegs = [s for s in scores.values() if s.pipeline.kind == "jpeg" and s.ap >= teacher.ap - 0.01]
    best_jpeg = min(jpegs, key=lambda s: s.bytes_per_frame) if jpegs else None
    points, variable = [], None
    for name, bottleneck in bottlenecks.items():
        head = Head(detector, bottleneck=bottleneck)
        macs = round(count_macs(lambda h=head: h.layers(x)) / total_macs, 4)
        head_ms = round(median_ms(lambda f, h=head: h([f]), frames, repeats=3), 2)
        for r in range(bottleneck.config.rates):
            score = scores[rate_name(name, r, bottleneck.config.rates)]
            points.append({
                "checkpoint": rate_name(name, r, bottleneck.config.rates), "ap": round(score.ap, 5),
                "ap50": round(score.ap50, 5), "bytes": round(score.bytes_per_frame, 1), "head_macs_ratio": macs,
                "bytes_ratio": round(score.bytes_per_frame / best_jpeg.bytes_per_frame, 4) if best_jpeg else None,
                "head_ms": head_ms, "unsplit_ms": round(unsplit_ms, 2),
            })
        if bottleneck.config.rates > 1 and variable is None:
            overheads = coding_overhead(head, bottleneck, images[:64])
            variable = {"checkpoint": name, "default_rate": bottleneck.config.default_rate, "points": [
                {"rate": r, "bytes": p["bytes"], "ap": p["ap"], "ap50": p["ap50"], "overhead_ratio": overheads[r]}
                for r, p in enumerate(points[-bottleneck.config.rates:])]}

    result = {
        "teacher_ap": round(teacher.ap, 5), "images": len(images),
        "jpeg": None if best_jpeg is None else {
            "ap": round(best_jpeg.ap, 5), "bytes": round(best_jpeg.bytes_per_frame, 1),
            "quality": best_jpeg.pipeline.quality, "resolution": best_jpeg.pipeline.resolution},
        **{name: pick(points, teacher.ap, target) for name, target in TARGETS.items()},
        "checkpoints": points, "variable_rate": variable,
        "baselines": [s.as_dict() for s in scores.values() if s.pipeline.kind != "split" or "8-bit" in s.pipeline.name],
    }
    print(format_table(["pipeline", "AP", "AP50", "KB/frame"],
                       [(s.pipeline.name, round(s.ap, 4), round(s.ap50, 4),
                         "-" if s.bytes_per_frame is None else round(s.bytes_per_frame / 1024, 2))
                        for s in scores.values()]))
    print(format_table(["checkpoint", "AP", "bytes", "bytes/JPEG", "head MACs", "head ms", "unsplit ms"],
                       [(p["checkpoint"], p["ap"], p["bytes"], p["bytes_ratio"], p["head_macs_ratio"],
                         p["head_ms"], p["unsplit_ms"]) for p in points]))
    if args.record:
        jpegs_seen = [{"quality": s.pipeline.quality, "resolution": s.pipeline.resolution, "ap": round(s.ap, 5),
                       "bytes": round(s.bytes_per_frame, 1)} for s in scores.values() if s.pipeline.kind == "jpeg"]
        for path, (name, bottleneck) in zip(paths, bottlenecks.items()):
            if Path(path).parent == shipped_folder():
                continue  # the package's own files stay as released
            rates = bottleneck.config.rates
            record_metadata(path, evaluation={
                "images": len(images), "teacher_ap": round(teacher.ap, 5), "jpeg": jpegs_seen,
                "points": [{"rate": r, "ap": round(scores[rate_name(name, r, rates)].ap, 5),
                            "bytes": round(scores[rate_name(name, r, rates)].bytes_per_frame, 1)}
                           for r in range(rates)]})
            print(f"recorded the evaluation in {path}'s metadata")
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print_json_line(result)
    return 0


def plot(result: dict, path: str) -> None:
    """AP against KB/frame from the bench's result: JPEG curves, 8-bit splits, each bottleneck labelled with
    its name and head MACs, the teacher's AP and the byte budgets drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    baselines = [b for b in result["baselines"] if b["bytes"]]
    variable = result.get("variable_rate")
    single = [p for p in result["checkpoints"] if " rate " not in p["checkpoint"]]
    groups = {"JPEG original": [b for b in baselines if b["resolution"] == "original"],
              "JPEG 300×300": [b for b in baselines if b["resolution"] == "input"],
              "8-bit split (no bottleneck)": [b for b in baselines if b["name"].startswith("8-bit")],
              "learned bottleneck": single}
    if variable:
        groups[f"one variable-rate checkpoint ({variable['checkpoint']}), its rates"] = variable["points"]
    for (label, members), marker in zip(groups.items(), "os^Dv"):
        chosen = sorted(members, key=lambda m: m["bytes"])
        if chosen:
            ax.plot([m["bytes"] / 1024 for m in chosen], [m["ap"] for m in chosen], marker=marker,
                    label=label, linestyle="-" if "JPEG" in label or "rate" in label else "none")
    for point, label_ap in zip(single, spread_labels(single)):
        ax.annotate(f"{point['checkpoint'].removeprefix('person_')} ({point['head_macs_ratio']:.0%} MACs)",
                    (point["bytes"] / 1024, point["ap"]), xytext=(point["bytes"] / 1024 * 1.08, label_ap),
                    fontsize=6, va="center", arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "gray"})
    teacher_ap = result["teacher_ap"]
    ax.axhline(teacher_ap, color="gray", linestyle="--", label=f"unsplit teacher (AP {teacher_ap:.3f})")
    ax.axhline(teacher_ap - 0.01, color="gray", linestyle=":", label="1 AP point below")
    if result["jpeg"]:  # the byte budgets: 1/10 and 1/20 of the smallest JPEG within 1 AP point
        for share, style in ((10, "-."), (20, (0, (1, 3)))):
            ax.axvline(result["jpeg"]["bytes"] / share / 1024, color="firebrick", linestyle=style, alpha=0.6,
                       label=f"1/{share} of the best JPEG's bytes")
    ax.set_xscale("log")
    ax.set_xlabel("KB per frame on the link (log scale)")
    ax.set_ylabel(f"person AP@[.5:.95], {result['images']} COCO images")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def spread_labels(points: list[dict], gap: float = 0.0025) -> list[float]:
    """Label heights (AP units) for ``points``: their own AP, pushed apart where labels of points at nearly
    the same byte rate (within 30 %) would overlap. Returned in the order of ``points``."""
    heights: dict[int, float] = {}
    for i in sorted(range(len(points)), key=lambda i: points[i]["ap"]):
        below = [heights[j] for j in heights if abs(points[j]["bytes"] / points[i]["bytes"] - 1) < 0.3]
        heights[i] = max([points[i]["ap"], *(h + gap for h in below)])
    return [heights[i] for i in range(len(points))]
