"""``splitinf eval``: COCO-style person/object AP of a zoo model, the JPEG-offload baseline next to it, and a
fidelity mode (AP against a reference model's detections) for unlabeled video.

Defaults: the person model is scored on all 482 COCO images of ``coco-union/instances_all_union.json``
(none seen in its VOC training); COCO-trained models on the 188 val2017 images only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from splitinf.bottleneck import Float32Codec, MinMax8Codec, load_for
from splitinf.data import ALL_UNION, VAL_UNION, coco_images, resolve, video_frames
from splitinf.evaluation.harness import PipelineScore, evaluate_coco, evaluate_fidelity
from splitinf.evaluation.pipelines import Pipeline, jpeg, split, unsplit
from splitinf.models import build_detector, detector_names, detector_spec
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.weights.checkpoints import find_checkpoint

QUALITIES = (10, 20, 30, 50, 75, 90)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite_mobilenet_v2_person", choices=detector_names(), metavar="MODEL",
                        help="zoo detector to evaluate (default %(default)s; see `splitinf models`)")
    parser.add_argument("--weights", default=None,
                        help="'pretrained', 'DEFAULT' (torchvision cache) or a file (default: the model's own)")
    parser.add_argument("--annotations", default=None, help="COCO JSON, file_name relative to the shared data "
                        "(default: all_union for the person model, val2017_union for COCO models)")
    images = parser.add_argument("--images", type=int, default=None, metavar="N",
                                 help="only the first N images (default: all of --annotations)")
    deprecated_alias(parser, images, "--limit")
    parser.add_argument("--jpeg", action="store_true", help="add the JPEG offload baseline")
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)),
                        help="JPEG qualities, comma list (default %(default)s)")
    parser.add_argument("--resolutions", default="original,input",
                        help="JPEG resolutions: original and/or input, the model's input size (default %(default)s)")
    parser.add_argument("--bottleneck", action="append", default=[], metavar="CKPT",
                        help="add split inference through this trained bottleneck (repeatable), real bytes")
    parser.add_argument("--split", action="append", default=[], metavar="POINT[:CODEC]",
                        help="add plain split inference at a split point, codec float32 or minmax8 (default)")
    parser.add_argument("--fidelity", metavar="VIDEO", default=None,
                        help="score against the unsplit model's detections (score >= 0.5) on frames of VIDEO")
    parser.add_argument("--frames", type=int, default=100, help="frames for --fidelity (default 100)")
    parser.add_argument("--frame-step", type=int, default=5,
                        help="take every N-th frame for --fidelity (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def pipelines_for(args: argparse.Namespace, detector) -> list[Pipeline]:
    pipelines = [unsplit(detector)]
    if args.jpeg:
        for resolution in args.resolutions.split(","):
            pipelines += [jpeg(detector, int(q), resolution.strip()) for q in args.qualities.split(",")]
    for point in args.split:
        key, _, codec_name = point.partition(":")
        codec = {"float32": Float32Codec(), "minmax8": MinMax8Codec(), "": MinMax8Codec()}.get(codec_name)
        if codec is None:
            raise ValueError(f"--split codec must be float32 or minmax8, got {codec_name!r}")
        pipelines.append(split(detector, codec, split_point=key))
    for path in args.bottleneck:
        bottleneck = load_for(find_checkpoint(path), detector)
        name = f"bottleneck {Path(path).stem}"
        pipelines.append(split(detector, bottleneck.codec(), bottleneck=bottleneck, name=name))
    return pipelines


def main(args: argparse.Namespace) -> int:
    spec = detector_spec(args.model)
    detector = build_detector(args.model, weights=args.weights or spec.default_weights)
    pipelines = pipelines_for(args, detector)
    if args.fidelity:
        frames = list(video_frames(args.fidelity, max_frames=args.frames, step=args.frame_step))
        categories = list(spec.categories or range(1, 91))
        scores = evaluate_fidelity(pipelines, unsplit(detector), frames, categories)
        dataset, count = str(args.fidelity), len(frames)
    else:
        annotations = args.annotations or (VAL_UNION if spec.trained_on_coco else ALL_UNION)
        ground_truth = json.loads(resolve(annotations).read_text())
        images = coco_images(annotations, limit=args.images)
        categories = list(spec.categories or [c["id"] for c in ground_truth["categories"]])
        scores = evaluate_coco(pipelines, ground_truth, images, categories)
        dataset, count = annotations, len(images)
    print(f"{args.model} on {count} images of {dataset} ({'fidelity' if args.fidelity else 'COCO'} AP, "
          f"categories {categories if len(categories) < 5 else f'{len(categories)} classes'})")
    print(format_table(["pipeline", "AP", "AP50", "KB/frame"], [_row(s) for s in scores]))
    if args.json:
        print_json_line({
            "model": args.model, "dataset": dataset, "images": count,
            "mode": "fidelity" if args.fidelity else "coco",
            "ap": round(scores[0].ap, 5), "ap50": round(scores[0].ap50, 5),
            "pipelines": [s.as_dict() for s in scores],
        })
    return 0


def _row(score: PipelineScore) -> tuple:
    size = "-" if score.bytes_per_frame is None else f"{score.bytes_per_frame / 1024:.1f}"
    return score.pipeline.name, round(score.ap, 4), round(score.ap50, 4), size
