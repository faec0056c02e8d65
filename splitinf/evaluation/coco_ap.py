"""COCO-style AP (AP@[.5:.95], AP50) with faster-coco-eval, restricted to the categories a model knows."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from faster_coco_eval import COCO, COCOeval_faster
from torch import Tensor


def to_coco_results(image_id: int, detections: dict[str, Tensor], keep: set[int] | None = None) -> list[dict]:
    """torchvision-style detections (x1y1x2y2 pixels; labels are COCO category ids) → COCO result records."""
    boxes = detections["boxes"].tolist()
    scores = detections["scores"].tolist()
    labels = detections["labels"].tolist()
    return [
        {"image_id": image_id, "category_id": int(label), "score": float(score),
         "bbox": [x1, y1, x2 - x1, y2 - y1]}
        for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels)
        if keep is None or int(label) in keep
    ]


def coco_ap(ground_truth: dict, results: list[dict], *, category_ids: Sequence[int] | None = None,
            image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """{"ap": AP@[.5:.95], "ap50": AP@.5, "ap75": AP@.75} over ``image_ids`` and ``category_ids``
    (default: all of the ground truth). No detections at all is AP 0, not an error."""
    categories = list(category_ids) if category_ids is not None else [c["id"] for c in ground_truth["categories"]]
    images = list(image_ids) if image_ids is not None else [im["id"] for im in ground_truth["images"]]
    results = [r for r in results if r["category_id"] in set(categories)]
    if not results:
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ground_truth)
        dt = gt.loadRes(results)
        evaluator = COCOeval_faster(gt, dt, "bbox")
        evaluator.params.catIds = categories
        evaluator.params.imgIds = images
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    # -1 means "no ground truth in this slice": report 0 so that tables stay numeric.
    return {key: max(float(stats[i]), 0.0) for key, i in (("ap", 0), ("ap50", 1), ("ap75", 2))}


def pseudo_ground_truth(frames: dict[int, dict[str, Tensor]], size: tuple[int, int], score_threshold: float,
                        category_ids: Sequence[int]) -> dict:
    """A COCO ground truth made of a reference model's confident detections (for data without labels)."""
    height, width = size
    images, annotations = [], []
    for image_id, detections in frames.items():
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{image_id}"})
        for record in to_coco_results(image_id, detections, set(category_ids)):
            if record["score"] >= score_threshold:
                w, h = record["bbox"][2], record["bbox"][3]
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0,
                                    "category_id": record["category_id"], "bbox": record["bbox"], "area": w * h})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in category_ids]}
