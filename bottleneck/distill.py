"""Head-network distillation losses (Matsubara & Levorato).

* HND: mean squared error between the student's and the frozen teacher's features at the split;
* GHND: the sum over the feature maps the teacher's detection heads consume. Each map's MSE is divided by
  the teacher map's mean square, so that a 1,280-channel map does not drown a 128-channel one;
* output distillation: the detector's per-anchor outputs — what AP actually depends on. Feature maps carry
  far more than a one-class detector reads (their error at 2 KB/frame stays near 20 %), so matching the
  scores and boxes spends the few bits where detections need them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def hnd_loss(student: Tensor, teacher: Tensor) -> Tensor:
    return torch.mean((student - teacher) ** 2)


def ghnd_loss(student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor]) -> Tensor:
    if len(student_maps) != len(teacher_maps):
        raise ValueError(f"{len(student_maps)} student maps but {len(teacher_maps)} teacher maps")
    total = student_maps[0].new_zeros(())
    for student, teacher in zip(student_maps, teacher_maps):
        total = total + torch.mean((student - teacher) ** 2) / teacher.pow(2).mean().clamp_min(1e-8)
    return total


def per_map_errors(student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor]) -> list[float]:
    """Normalised MSE of each map (for logs: which map the student misses)."""
    with torch.no_grad():
        return [float(torch.mean((s - t) ** 2) / t.pow(2).mean().clamp_min(1e-8))
                for s, t in zip(student_maps, teacher_maps)]


def output_distillation_loss(student: tuple[Tensor, Tensor], teacher: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """(class term, box term) between per-anchor outputs (sigmoid class logits [N, A, K], box regression
    [N, A, 4]).

    Class term: binary cross-entropy of the student's logits against the teacher's probabilities, less the
    teacher's own entropy (0 for a perfect student). Box term: smooth-L1 on the regression, weighted by the
    teacher's confidence in the anchor (background anchors' boxes are never used). Both are summed over
    anchors and divided by the teacher's total confidence, so a crowded frame counts as much per object as
    a sparse one.
    """
    student_logits, student_boxes = student
    teacher_logits, teacher_boxes = (t.detach() for t in teacher)
    confidence = torch.sigmoid(teacher_logits)
    classes = (F.binary_cross_entropy_with_logits(student_logits, confidence, reduction="sum")
               - F.binary_cross_entropy_with_logits(teacher_logits, confidence, reduction="sum"))
    anchor_weight = confidence.amax(dim=-1, keepdim=True)
    boxes = (anchor_weight * F.smooth_l1_loss(student_boxes, teacher_boxes, reduction="none", beta=0.1)).sum()
    objects = confidence.sum().clamp_min(1.0)
    return classes / objects, boxes / objects
