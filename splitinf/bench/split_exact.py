"""``splitinf bench split-exact``: is ``tail(head(x))`` bitwise the unsplit model, for every detector × split?

Random-init weights at a fixed seed, real COCO val images. Score thresholds are set to 0 so that even a
random-init Faster R-CNN emits detections to compare (the same modules serve both paths, so this changes
nothing about exactness).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from splitinf.data import VAL_UNION, coco_images, read_image
from splitinf.head import Head
from splitinf.models import Detections, build_detector, detector_names
from splitinf.report import format_table, print_json_line
from splitinf.tail import Tail


@dataclass
class PairResult:
    model: str
    split: str
    images: int
    detections: int
    max_abs_diff: float
    mismatched: bool


def compare(reference: Detections, candidate: Detections) -> tuple[bool, float, int]:
    """(identical, max |difference| over boxes/scores/labels, number of detections compared)."""
    identical, worst, count = True, 0.0, 0
    for ref, out in zip(reference, candidate, strict=True):
        for key in ("boxes", "scores", "labels"):
            a, b = ref[key], out[key]
            if a.shape != b.shape:
                return False, float("inf"), count
            if a.numel():
                worst = max(worst, (a.double() - b.double()).abs().max().item())
            identical = identical and torch.equal(a, b)
        count += len(ref["scores"])
    return identical, worst, count


def run(models: list[str], images: list[Tensor], seed: int, progress: bool = True) -> list[PairResult]:
    results = []
    work = tqdm(total=len(models), desc="split-exact", unit="model", disable=not progress)
    for name in models:
        detector = build_detector(name, seed=seed)
        detector.set_score_threshold(0.0)
        with torch.inference_mode():
            references = [detector([image]) for image in images]
            for point in detector.split_points:
                head, tail = Head(detector, point.key), Tail(detector, point.key)
                result = PairResult(name, point.key, len(images), 0, 0.0, False)
                for image, reference in zip(images, references):
                    same, diff, count = compare(reference, tail(*head([image])))
                    result.mismatched |= not same
                    result.max_abs_diff = max(result.max_abs_diff, diff)
                    result.detections += count
                results.append(result)
        work.update()
    work.close()
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=5, help="real COCO val images to use (default 5)")
    parser.add_argument("--model", action="append", help="only this detector (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=0, help="random-init seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line last")


def main(args: argparse.Namespace) -> int:
    models = args.model or detector_names()
    images = [read_image(im.path) for im in coco_images(VAL_UNION, limit=args.images)]
    results = run(models, images, args.seed, progress=True)
    rows = [(r.model, r.split, r.images, r.detections, r.max_abs_diff, "MISMATCH" if r.mismatched else "equal")
            for r in results]
    print(format_table(["model", "split", "images", "detections", "max_abs_diff", "result"], rows))
    summary = {
        "pairs": len(results),
        "mismatched": sum(r.mismatched for r in results),
        "max_abs_diff": max((r.max_abs_diff for r in results), default=0.0),
        "images": len(images),
        "detections_compared": sum(r.detections for r in results),
    }
    if args.json:
        print_json_line(summary)
    return 0 if summary["mismatched"] == 0 else 1
