"""Run pipelines over a COCO-annotated image set (or unlabeled video frames) and score them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from splitinf.data import CocoImage, read_image
from splitinf.evaluation.coco_ap import coco_ap, pseudo_ground_truth, to_coco_results
from splitinf.evaluation.pipelines import Pipeline


@dataclass
class PipelineScore:
    pipeline: Pipeline
    ap: float = 0.0
    ap50: float = 0.0
    bytes_per_frame: float | None = None
    results: list[dict] = field(default_factory=list, repr=False)
    sizes: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        p = self.pipeline
        return {"name": p.name, "kind": p.kind, "quality": p.quality, "resolution": p.resolution,
                "ap": round(self.ap, 5), "ap50": round(self.ap50, 5),
                "bytes": None if self.bytes_per_frame is None else round(self.bytes_per_frame, 1)}


def _run(pipelines: Sequence[Pipeline], frames: Sequence[tuple[int, Tensor]], keep: set[int] | None,
         desc: str) -> list[PipelineScore]:
    scores = [PipelineScore(p) for p in pipelines]
    with torch.inference_mode():
        for image_id, image in tqdm(frames, desc=desc, unit="img"):
            for score in scores:
                detections, size = score.pipeline.run(image)
                score.results += to_coco_results(image_id, detections, keep)
                if size is not None:
                    score.sizes.append(size)
    for score in scores:
        score.bytes_per_frame = float(np.mean(score.sizes)) if score.sizes else None
    return scores


def evaluate_coco(pipelines: Sequence[Pipeline], ground_truth: dict, images: Sequence[CocoImage],
                  category_ids: Sequence[int]) -> list[PipelineScore]:
    """AP of every pipeline on ``images`` against the COCO ``ground_truth``, restricted to ``category_ids``."""
    frames = ((im.id, read_image(im.path)) for im in images)
    scores = _run(pipelines, _Sized(frames, len(images)), set(category_ids), "eval")
    ids = [im.id for im in images]
    for score in scores:
        ap = coco_ap(ground_truth, score.results, category_ids=category_ids, image_ids=ids)
        score.ap, score.ap50 = ap["ap"], ap["ap50"]
    return scores


def evaluate_fidelity(pipelines: Sequence[Pipeline], reference: Pipeline, frames: Sequence[Tensor],
                      category_ids: Sequence[int], score_threshold: float = 0.5) -> list[PipelineScore]:
    """AP of every pipeline against the reference's detections (score ≥ threshold) as pseudo ground truth."""
    numbered = list(enumerate(frames, start=1))
    reference_detections = {}
    with torch.inference_mode():
        for image_id, frame in tqdm(numbered, desc="reference", unit="frame"):
            reference_detections[image_id] = reference.run(frame)[0]
    size = tuple(frames[0].shape[-2:])
    ground_truth = pseudo_ground_truth(reference_detections, size, score_threshold, category_ids)
    scores = _run(pipelines, numbered, set(category_ids), "fidelity")
    for score in scores:
        ap = coco_ap(ground_truth, score.results, category_ids=category_ids)
        score.ap, score.ap50 = ap["ap"], ap["ap50"]
    return scores


class _Sized:
    """An iterator with a length, so the progress bar knows the total while images decode lazily."""

    def __init__(self, iterator, length: int) -> None:
        self.iterator, self.length = iterator, length

    def __iter__(self):
        return iter(self.iterator)

    def __len__(self) -> int:
        return self.length
