"""The TF1 Object Detection API operations that PyTorch does differently, rebuilt exactly.

Each of these moves outputs visibly when skipped (see PRETRAINED.md): TF "SAME" padding (asymmetric on
even inputs with stride 2), TF1's legacy bilinear resize, the SSD anchor grid of ``ssd_anchor_generator``,
the ``faster_rcnn_box_coder`` in (ty, tx, th, tw) order, and ``multiclass_non_max_suppression``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF "SAME": total ``max((ceil(in/s) − 1)·s + k − in, 0)``, the odd pixel at the bottom/right."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TF "SAME" padding computed from the actual input size.

    Keeps the parameter names of ``nn.Conv2d`` so state dicts are interchangeable.
    """

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def use_tf_same_padding(module: nn.Module) -> nn.Module:
    """Swap every strided convolution of ``module`` for a :class:`Conv2dSame` in place.

    Stride-1 convolutions with odd kernels already pad symmetrically like TF, so they stay native (faster).
    """
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and max(child.stride) > 1:
            same = Conv2dSame(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                stride=child.stride,
                padding=0,
                dilation=child.dilation,
                groups=child.groups,
                bias=child.bias is not None,
            )
            same.load_state_dict(child.state_dict())
            setattr(module, name, same)
        else:
            use_tf_same_padding(child)
    return module


def resize_bilinear_legacy(images: Tensor, size: tuple[int, int]) -> Tensor:
    """TF1 ``resize_bilinear(align_corners=False)`` without half-pixel centres: ``src = dst · in / out``.

    ``images`` is float32 [N, C, H, W]; arithmetic is float32 as in TF's kernel.
    """
    in_h, in_w = images.shape[-2:]
    out_h, out_w = size
    if (in_h, in_w) == (out_h, out_w):
        return images

    def weights(in_size: int, out_size: int) -> tuple[Tensor, Tensor, Tensor]:
        scale = torch.tensor(in_size / out_size, dtype=torch.float32)
        src = torch.arange(out_size, dtype=torch.float32) * scale
        low = torch.floor(src)
        lerp = src - low
        low_i = low.to(torch.int64).clamp(0, in_size - 1)
        high_i = torch.ceil(src).to(torch.int64).clamp(max=in_size - 1)
        return low_i.to(images.device), high_i.to(images.device), lerp.to(images.device)

    y0, y1, ly = weights(in_h, out_h)
    x0, x1, lx = weights(in_w, out_w)
    top = images[..., y0, :]
    bottom = images[..., y1, :]
    top_left, top_right = top[..., x0], top[..., x1]
    bottom_left, bottom_right = bottom[..., x0], bottom[..., x1]
    top = top_left + (top_right - top_left) * lx
    bottom = bottom_left + (bottom_right - bottom_left) * lx
    return top + (bottom - top) * ly[:, None]


def ssd_anchors(
    grid_sizes: Sequence[int],
    *,
    min_scale: float = 0.2,
    max_scale: float = 0.95,
    aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
    reduce_boxes_in_lowest_layer: bool = True,
) -> Tensor:
    """TF ``ssd_anchor_generator`` with a 1×1 base anchor: [A, 4] (ymin, xmin, ymax, xmax), normalised.

    Order: grid row, grid column, then anchor (the NHWC order of the box predictors).
    """
    layers = len(grid_sizes)
    scales = [min_scale + (max_scale - min_scale) * i / (layers - 1) for i in range(layers)] + [1.0]
    per_layer = []
    for layer, grid in enumerate(grid_sizes):
        if layer == 0 and reduce_boxes_in_lowest_layer:
            boxes = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
        else:
            boxes = [(scales[layer], ratio) for ratio in aspect_ratios]
            boxes.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
        box_scales = torch.tensor([s for s, _ in boxes], dtype=torch.float32)
        ratio_sqrts = torch.sqrt(torch.tensor([r for _, r in boxes], dtype=torch.float32))
        heights = box_scales / ratio_sqrts
        widths = box_scales * ratio_sqrts
        stride = torch.tensor(1.0, dtype=torch.float32) / grid
        centres = torch.arange(grid, dtype=torch.float32) * stride + 0.5 * stride
        cy = centres[:, None, None].expand(grid, grid, len(boxes))
        cx = centres[None, :, None].expand(grid, grid, len(boxes))
        h = heights.expand(grid, grid, len(boxes))
        w = widths.expand(grid, grid, len(boxes))
        corners = torch.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], dim=-1)
        per_layer.append(corners.reshape(-1, 4))
    return torch.cat(per_layer)


def anchors_per_location(layers: int, aspect_ratios: int = 5, reduce_lowest: bool = True) -> list[int]:
    """How many anchors :func:`ssd_anchors` puts in each cell of each layer."""
    return [3 if (i == 0 and reduce_lowest) else aspect_ratios + 1 for i in range(layers)]


def decode_boxes(codes: Tensor, anchors: Tensor, scales: tuple[float, float, float, float] = (10, 10, 5, 5)) -> Tensor:
    """TF ``faster_rcnn_box_coder.decode``: (ty, tx, th, tw) against (ymin, xmin, ymax, xmax) anchors."""
    ycenter_a = (anchors[..., 0] + anchors[..., 2]) / 2
    xcenter_a = (anchors[..., 1] + anchors[..., 3]) / 2
    ha = anchors[..., 2] - anchors[..., 0]
    wa = anchors[..., 3] - anchors[..., 1]
    ty, tx, th, tw = codes.unbind(-1)
    ty = ty / scales[0]
    tx = tx / scales[1]
    th = th / scales[2]
    tw = tw / scales[3]
    w = torch.exp(tw) * wa
    h = torch.exp(th) * ha
    ycenter = ty * ha + ycenter_a
    xcenter = tx * wa + xcenter_a
    return torch.stack([ycenter - h / 2, xcenter - w / 2, ycenter + h / 2, xcenter + w / 2], dim=-1)


def multiclass_nms(
    boxes: Tensor,
    scores: Tensor,
    *,
    score_threshold: float,
    iou_threshold: float,
    max_per_class: int,
    max_total: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """TF ``multiclass_non_max_suppression`` as frozen in the SSD graphs: per class, NMS over the boxes
    scoring above the threshold (on the *unclipped* boxes), keep ``max_per_class``; sort all classes by score;
    clip to the window [0, 1] and drop boxes left with zero area; keep the best ``max_total``.
    ``boxes`` [A, 4] (y, x, y, x); ``scores`` [A, K] without background.

    Returns (boxes [D, 4], scores [D], class index [D] in 0..K-1), sorted by descending score.

    Greedy NMS decides each box from the boxes kept before it, so NMS over the best ``m`` candidates of a
    class gives exactly the first kept boxes of NMS over all of them. With a score threshold of 1e-8 every
    anchor is a candidate (1,917 × classes); running NMS on growing prefixes until each class has
    ``max_per_class`` boxes (or has run out) gives TF's answer at a fraction of the cost.
    """
    num_anchors, num_classes = scores.shape
    sorted_scores, order = scores.sort(dim=0, descending=True, stable=True)  # [A, K] per class
    valid = sorted_scores > score_threshold
    available = valid.sum(dim=0)
    prefix = min(num_anchors, 4 * max_per_class)
    while True:
        rank, cls = valid[:prefix].nonzero(as_tuple=True)
        anchor = order[rank, cls]
        kept = batched_nms(boxes[anchor], sorted_scores[rank, cls], cls, iou_threshold)  # by score, desc
        per_class = torch.bincount(cls[kept], minlength=num_classes)
        complete = (per_class >= max_per_class) | (available <= prefix)
        if bool(complete.all()):
            break
        prefix = min(num_anchors, prefix * 4)
    # Rank of each kept box within its class (kept is in descending score order).
    onehot = torch.nn.functional.one_hot(cls[kept], num_classes)
    rank_in_class = (onehot.cumsum(0) * onehot).sum(1) - 1
    kept = kept[rank_in_class < max_per_class]
    clipped = boxes[anchor[kept]].clamp(0.0, 1.0)
    nonzero = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) > 0
    kept, clipped = kept[nonzero][:max_total], clipped[nonzero][:max_total]
    return clipped, sorted_scores[rank[kept], cls[kept]], cls[kept]
