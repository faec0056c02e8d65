"""``splitinf train-prefilter``: teach the prefilter which frames hold something of interest.

Labels come from the unsplit teacher: a frame is positive when the teacher finds one of ``--classes`` with a
score ≥ ``--score``. Images: the VOC2007 trainval photos (about 2,100 with people, 740 without) and frames of
the shared videos — never COCO, the evaluation set. A fifth of them (chosen by a seeded shuffle) is held out
to choose the decision threshold: the highest one that keeps ``--recall`` of the held-out positives.

    splitinf train-prefilter --out prefilter_person_s16.pt
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from splitinf.head.prefilter import Prefilter, PrefilterConfig
from splitinf.label_free import Source, load_rgb, video_sources, voc_photos
from splitinf.models import build_detector, detector_names, detector_spec
from splitinf.report import print_json_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite_mobilenet_v2_person", choices=detector_names(), metavar="MODEL",
                        help="the teacher, a zoo detector (default %(default)s)")
    parser.add_argument("--tap", type=int, default=12,
                        help="trunk block whose output it reads (default 12: stride 16, where the shipped "
                             "bottleneck taps, so the head computes it anyway; tap 6 filtered far fewer frames)")
    parser.add_argument("--classes", default="1", help="labels of interest, comma list (default 1 = person)")
    parser.add_argument("--score", type=float, default=0.5,
                        help="teacher score that makes a frame positive (default %(default)s)")
    parser.add_argument("--recall", type=float, default=0.99, help="held-out frame recall to keep (default 0.99)")
    parser.add_argument("--video-step", type=int, default=5, help="every N-th video frame (default 5)")
    parser.add_argument("--epochs", type=int, default=40, help="passes over the training frames (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and the weights (default 0)")
    parser.add_argument("--out", required=True, help="checkpoint to write")
    parser.add_argument("--json", action="store_true", help="print the threshold and held-out numbers as one JSON "
                        "line last")


def label_and_features(detector, sources: list[Source], tap: int, classes: set[int], score: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher labels and the trunk features at ``tap`` of every source image (float16, in memory)."""
    trunk = detector.trunk[: tap + 1]
    labels, features = [], []
    with torch.inference_mode():
        for source in tqdm(sources, desc="teacher labels", unit="img"):
            image = torch.from_numpy(load_rgb(source)).permute(2, 0, 1).contiguous()
            x, geometries = detector.preprocess([image])
            early = trunk(x)
            detections = detector.detect(detector.neck(detector.trunk[tap + 1 :](early)), geometries)[0]
            hit = [(int(label) in classes) and float(s) >= score
                   for label, s in zip(detections["labels"], detections["scores"])]
            labels.append(float(any(hit)))
            features.append(early[0].half())
    return torch.tensor(labels), torch.stack(features)


def threshold_for_recall(probabilities: np.ndarray, labels: np.ndarray, recall: float) -> float:
    """The highest threshold whose recall on these frames is at least ``recall``."""
    positives = np.sort(probabilities[labels == 1])
    if len(positives) == 0:
        return 0.5
    index = int(np.floor((1 - recall) * len(positives) + 1e-9))  # (1 - 0.8) * 5 is 0.999…
    return float(max(positives[index] - 1e-6, 1e-6))


def main(args: argparse.Namespace) -> int:
    started = time.time()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    detector = build_detector(args.model, weights=detector_spec(args.model).default_weights)
    classes = {int(c) for c in args.classes.split(",")}
    sources = voc_photos() + video_sources(step=args.video_step)
    order = rng.permutation(len(sources))
    held_out = set(order[: len(sources) // 5].tolist())
    labels, features = label_and_features(detector, sources, args.tap, classes, args.score)
    train = torch.tensor([i not in held_out for i in range(len(sources))])
    config = PrefilterConfig(args.model, args.tap, int(features.shape[1]), classes=tuple(sorted(classes)),
                             score=args.score)
    prefilter = Prefilter(config)
    optimizer = torch.optim.AdamW(prefilter.parameters(), lr=3e-3, weight_decay=1e-4)
    x_train, y_train = features[train], labels[train]
    positive_weight = (y_train == 0).sum() / max((y_train == 1).sum(), 1)  # balance the classes
    for epoch in range(args.epochs):
        prefilter.train()
        permutation = torch.randperm(len(x_train))
        for start in range(0, len(x_train), 64):
            batch = permutation[start : start + 64]
            x = x_train[batch].float()
            if epoch % 2:
                x = x.flip(-1)  # horizontal flip of the feature map: a mirrored frame
            loss = F.binary_cross_entropy_with_logits(prefilter(x), y_train[batch], pos_weight=positive_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    prefilter.eval()
    with torch.inference_mode():
        probabilities = torch.sigmoid(prefilter(features[~train].float())).numpy()
    held_labels = labels[~train].numpy()
    threshold = threshold_for_recall(probabilities, held_labels, args.recall)
    kept = probabilities >= threshold
    recall = float((kept & (held_labels == 1)).sum() / max((held_labels == 1).sum(), 1))
    precision = float((kept & (held_labels == 1)).sum() / max(kept.sum(), 1))
    empty_filtered = float((~kept & (held_labels == 0)).sum() / max((held_labels == 0).sum(), 1))
    final = Prefilter(replace(config, threshold=threshold))
    final.load_state_dict(prefilter.state_dict())
    options = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in vars(args).items()
                       if k != "json")  # what is printed is not part of what was trained
    final.save(args.out, metadata={
        "command": f"splitinf train-prefilter {options}", "wall_time_s": round(time.time() - started, 1),
        "held_out": sorted(sources[i].name for i in held_out), "images": len(sources),
        "positives": int(labels.sum()), "held_out_recall": recall, "held_out_precision": precision,
        "held_out_empty_filtered": empty_filtered,
    })
    print(f"wrote {args.out}: threshold {threshold:.4f}; held-out recall {recall:.3f}, precision {precision:.3f}, "
          f"empty frames filtered {empty_filtered:.3f} ({len(held_out)} held-out of {len(sources)}, "
          f"{int(labels.sum())} positive); {(time.time() - started) / 60:.1f} min", file=sys.stderr)
    if args.json:
        print_json_line({"checkpoint": str(args.out), "threshold": threshold, "held_out_recall": recall,
                         "held_out_precision": precision, "held_out_empty_filtered": empty_filtered,
                         "held_out": len(held_out), "images": len(sources)})
    return 0
