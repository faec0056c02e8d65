"""``splitinf eval-prefilter``: what the prefilter keeps, drops and costs.

* frame recall and precision on the held-out training frames (labels from the unsplit teacher);
* on each shared video: the fraction of frames filtered, the fraction of empty frames filtered, and the
  bytes saved (filtered frames × the split payload);
* the person AP change on the 482 COCO images when it runs in front of the split model (a filtered image
  yields no detections) — in AP points;
* its time against the head's on this CPU (``time_ratio``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from splitinf.bottleneck import load_for
from splitinf.data import ALL_UNION, CAR_VIDEO, PERSON_VIDEO, coco_images, read_image, resolve, video_frames
from splitinf.evaluation.coco_ap import coco_ap, to_coco_results
from splitinf.head import Head, load_prefilter
from splitinf.label_free import load_rgb, video_sources, voc_photos
from splitinf.models import build_detector, detector_spec
from splitinf.options import deprecated_alias
from splitinf.report import format_table, print_json_line
from splitinf.runtime.setup import bottleneck_for
from splitinf.tail import Tail
from splitinf.weights.checkpoints import DEFAULT_PREFILTER, find_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefilter", default=DEFAULT_PREFILTER, metavar="CKPT",
                        help=f"prefilter checkpoint: a file or a checkpoint name (default {DEFAULT_PREFILTER})")
    parser.add_argument("--bottleneck", default="default",
                        help="bottleneck behind it, a file or a name (default %(default)s: the shipped one)")
    parser.add_argument("--threshold", type=float, default=None, help="override the trained threshold")
    parser.add_argument("--frame-step", type=int, default=3, help="every N-th video frame (default 3)")
    images = parser.add_argument("--images", type=int, default=None, metavar="N",
                                 help="only the first N COCO images (quick look; default: all 482)")
    deprecated_alias(parser, images, "--limit")
    parser.add_argument("--held-out", type=int, default=None, metavar="N",
                        help="only the first N of the prefilter's held-out frames (quick look; default: all)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")


def is_positive(detections: dict, classes: tuple[int, ...], score: float) -> bool:
    return any(int(label) in classes and float(s) >= score
               for label, s in zip(detections["labels"], detections["scores"]))


def main(args: argparse.Namespace) -> int:
    prefilter_path = find_checkpoint(args.prefilter)
    checkpoint = torch.load(prefilter_path, map_location="cpu", weights_only=True)
    model = checkpoint["config"]["model"]
    detector = build_detector(model, weights=detector_spec(model).default_weights)
    prefilter = load_prefilter(prefilter_path, model, args.threshold)
    config = prefilter.config
    path = bottleneck_for(model, args.bottleneck)
    bottleneck = load_for(path, detector) if path else None
    head = Head(detector, None if bottleneck else "s16", bottleneck)
    tail = Tail(detector, None if bottleneck else "s16", bottleneck)
    codec = bottleneck.codec() if bottleneck else None

    # 1. held-out frames
    held = set(checkpoint["metadata"].get("held_out", []))
    sources = [s for s in voc_photos() + video_sources(step=5) if s.name in held][: args.held_out]
    kept_flags, labels = [], []
    with torch.inference_mode():
        for source in sources:
            image = torch.from_numpy(load_rgb(source)).permute(2, 0, 1).contiguous()
            labels.append(is_positive(detector([image])[0], config.classes, config.score))
            kept_flags.append(prefilter.keeps(detector, [image]))
    kept, labels = np.array(kept_flags), np.array(labels)
    recall = float((kept & labels).sum() / max(labels.sum(), 1))
    precision = float((kept & labels).sum() / max(kept.sum(), 1))

    # 2. the shared videos
    videos, head_ms, prefilter_ms = {}, [], []
    with torch.inference_mode():
        for video in (PERSON_VIDEO, CAR_VIDEO):
            flags, empties, payload = [], [], []
            for frame in video_frames(resolve(video), step=args.frame_step):
                start = time.perf_counter_ns()
                features, _ = head([frame])
                head_ms.append((time.perf_counter_ns() - start) / 1e6)
                kept, _, ms = head.forward_filtered([frame], prefilter)
                prefilter_ms.append(ms)
                flags.append(kept is not None)
                empties.append(not is_positive(detector([frame])[0], config.classes, config.score))
                payload.append(len(codec.compress(features[0])) if codec else features.numel())
            flags, empties = np.array(flags), np.array(empties)
            saved = float(np.sum(np.array(payload)[~flags]) / np.sum(payload))
            videos[video] = {"frames": len(flags), "filtered_fraction": round(float((~flags).mean()), 4),
                             "filtered_empty_fraction": round(float((~flags & empties).sum() / max(empties.sum(), 1)),
                                                              4),
                             "missed_positive_frames": int((~flags & ~empties).sum()),
                             "bytes_saved_fraction": round(saved, 4)}

    # 3. AP on the COCO images with and without the prefilter in front of the split model
    truth = json.loads(resolve(ALL_UNION).read_text())
    images = coco_images(ALL_UNION, limit=args.images)
    plain, filtered = [], []
    with torch.inference_mode():
        for record in images:
            image = read_image(record.path)
            features, geometries = head([image])
            received = codec.decompress(codec.compress(features[0]))[None] if codec else features
            detections = tail(received, geometries)[0]
            results = to_coco_results(record.id, detections, set(config.classes))
            plain += results
            if prefilter.keeps(detector, [image]):
                filtered += results
    ids = [r.id for r in images]
    ap_plain = coco_ap(truth, plain, category_ids=list(config.classes), image_ids=ids)["ap"]
    ap_filtered = coco_ap(truth, filtered, category_ids=list(config.classes), image_ids=ids)["ap"]
    empty_all = [v["filtered_empty_fraction"] for v in videos.values()]
    result = {
        "recall": round(recall, 4), "precision": round(precision, 4), "held_out_frames": len(sources),
        "filtered_empty_fraction": round(float(np.mean(empty_all)), 4), "videos": videos,
        "ap": round(ap_plain, 5), "ap_with_prefilter": round(ap_filtered, 5),
        "ap_drop": round((ap_plain - ap_filtered) * 100, 3),  # AP points
        "time_ratio": round(float(np.median(prefilter_ms) / np.median(head_ms)), 4),
        "threshold": config.threshold, "images": len(images),
    }
    print(format_table(["metric", "value"], [(k, v) for k, v in result.items() if k != "videos"]))
    for video, stats in videos.items():
        print(f"{video}: {stats}")
    if args.json:
        print_json_line(result)
    return 0

