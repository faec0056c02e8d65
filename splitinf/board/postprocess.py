"""The detector's last step in NumPy, for ``local`` mode on a board: per-anchor outputs → detections. The same
steps as :mod:`splitinf.models.tf_compat` (TF's ``faster_rcnn_box_coder`` and ``multiclass_non_max_suppression``
as frozen in the SSD graphs), written for arrays."""

from __future__ import annotations

import numpy as np


def decode_boxes(codes: np.ndarray, anchors: np.ndarray, scales: tuple[float, ...] = (10, 10, 5, 5)) -> np.ndarray:
    """(ty, tx, th, tw) against (ymin, xmin, ymax, xmax) anchors → (ymin, xmin, ymax, xmax), normalised."""
    ycenter_a, xcenter_a = (anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ty, tx, th, tw = (codes[:, i] / np.float32(s) for i, s in enumerate(scales))
    h, w = np.exp(th) * ha, np.exp(tw) * wa
    ycenter, xcenter = ty * ha + ycenter_a, tx * wa + xcenter_a
    return np.stack([ycenter - h / 2, xcenter - w / 2, ycenter + h / 2, xcenter + w / 2], axis=-1)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box against many (any consistent corner order)."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    high = np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None)
    inter = high[:, 0] * high[:, 1]
    return inter / (area + areas - inter)


def greedy_nms(boxes: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Indices of the boxes kept (``boxes`` sorted by descending score): each box is dropped when it overlaps a
    kept one by more than ``iou_threshold``. Stops at ``limit`` kept boxes (later boxes cannot change them)."""
    alive = np.ones(len(boxes), dtype=bool)
    kept: list[int] = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        kept.append(i)
        if len(kept) == limit:
            break
        alive[i + 1 :] &= _iou(boxes[i], boxes[i + 1 :]) <= iou_threshold
    return kept


def multiclass_nms(boxes: np.ndarray, scores: np.ndarray, *, score_threshold: float, iou_threshold: float,
                   max_per_class: int, max_total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``boxes`` [A, 4] (y, x, y, x), ``scores`` [A, K] without background → (boxes [D, 4] clipped to [0, 1],
    scores [D], class index [D]) by descending score: per class NMS over the unclipped boxes scoring above the
    threshold, ``max_per_class`` each; then clipping, zero-area boxes dropped, the best ``max_total``."""
    anchors, picked_scores, classes = [], [], []
    for k in range(scores.shape[1]):
        candidates = np.flatnonzero(scores[:, k] > score_threshold)
        order = candidates[np.argsort(-scores[candidates, k], kind="stable")]
        kept = order[greedy_nms(boxes[order], iou_threshold, max_per_class)]
        anchors.append(kept)
        picked_scores.append(scores[kept, k])
        classes.append(np.full(len(kept), k, dtype=np.int64))
    anchor, score, cls = np.concatenate(anchors), np.concatenate(picked_scores), np.concatenate(classes)
    order = np.argsort(-score, kind="stable")
    anchor, score, cls = anchor[order], score[order], cls[order]
    clipped = np.clip(boxes[anchor], 0.0, 1.0)
    nonzero = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) > 0
    return clipped[nonzero][:max_total], score[nonzero][:max_total], cls[nonzero][:max_total]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def detections(logits: np.ndarray, regression: np.ndarray, anchors: np.ndarray, original: tuple[int, int], *,
               score_threshold: float, iou_threshold: float, max_detections: int) -> dict[str, np.ndarray]:
    """One image's per-anchor outputs (foreground logits [A, K], box codes [A, 4]) → detections in pixels of
    the original frame: ``boxes`` x1y1x2y2, ``scores``, ``labels`` (1-based, 0 being the background)."""
    boxes, scores, classes = multiclass_nms(decode_boxes(regression, anchors), sigmoid(logits),
                                            score_threshold=score_threshold, iou_threshold=iou_threshold,
                                            max_per_class=max_detections, max_total=max_detections)
    height, width = original
    xyxy = boxes[:, [1, 0, 3, 2]] * np.array([width, height, width, height], dtype=np.float32)
    return {"boxes": xyxy.astype(np.float32), "scores": scores.astype(np.float32), "labels": classes + 1}
