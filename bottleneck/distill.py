"""Head-network distillation losses (Matsubara & Levorato).

* HND: mean squared error between the student's and the frozen teacher's features at the split;
* GHND: the sum over the feature maps the teacher's detection heads consume. Each map's MSE is divided by
  the teacher map's mean square, so that a 1,280-channel map does not drown a 128-channel one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
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
