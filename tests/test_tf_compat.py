import math

import pytest
import torch

from splitinf.models.tf_compat import (
    Conv2dSame,
    decode_boxes,
    multiclass_nms,
    resize_bilinear_legacy,
    same_padding,
    ssd_anchors,
)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(300, 3, 2, (0, 1)), (150, 3, 2, (0, 1)), (19, 3, 2, (1, 1)), (75, 3, 2, (1, 1)), (10, 3, 2, (0, 1)),
     (5, 3, 2, (1, 1)), (2, 3, 2, (0, 1)), (19, 3, 1, (1, 1)), (19, 1, 1, (0, 0))],
)
def test_same_padding_matches_tf_formula(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected


def test_conv2d_same_pads_bottom_right_on_even_input():
    conv = Conv2dSame(1, 1, 3, stride=2, bias=False)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # TF pads (0, 1): windows start at rows/cols 0 and 2, so the top-left taps are x[0,0], x[0,2], x[2,0]...
    assert conv(x).flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_legacy_resize_uses_src_equals_dst_times_scale():
    x = torch.tensor([[[[0.0, 10.0, 20.0, 30.0]]]])  # 1×4 → 1×3: src = 0, 4/3, 8/3
    out = resize_bilinear_legacy(x, (1, 3)).flatten()
    expected = [0.0, 10.0 + 10.0 / 3, 20.0 + 20.0 / 3]
    assert out.tolist() == pytest.approx(expected, abs=1e-5)
    up = resize_bilinear_legacy(torch.tensor([[[[0.0, 10.0]]]]), (1, 4)).flatten()
    assert up.tolist() == pytest.approx([0.0, 5.0, 10.0, 10.0])  # no half-pixel centres, edge clamped


def test_ssd_anchor_grid_matches_tf_generator():
    anchors = ssd_anchors((19, 10, 5, 3, 2, 1))
    assert anchors.shape == (1917, 4)
    c = 0.5 / 19
    first = anchors[:3]
    assert first[0].tolist() == pytest.approx([c - 0.05, c - 0.05, c + 0.05, c + 0.05], abs=1e-6)
    h, w = 0.2 / math.sqrt(2), 0.2 * math.sqrt(2)  # 2:1 anchor of scale 0.2
    assert first[1].tolist() == pytest.approx([c - h / 2, c - w / 2, c + h / 2, c + w / 2], abs=1e-6)
    last = anchors[-1]  # 1×1 grid, interpolated 1:1 anchor sqrt(0.95 · 1.0), last in its cell
    s = math.sqrt(0.95)
    assert last.tolist() == pytest.approx([0.5 - s / 2, 0.5 - s / 2, 0.5 + s / 2, 0.5 + s / 2], abs=1e-6)


def test_decode_boxes_inverts_the_faster_rcnn_coder():
    anchors = torch.tensor([[0.2, 0.1, 0.6, 0.5]])
    assert decode_boxes(torch.zeros(1, 4), anchors)[0].tolist() == pytest.approx(anchors[0].tolist())
    codes = torch.tensor([[10.0 * 0.1 / 0.4, 0.0, 5.0 * math.log(2.0), 0.0]])  # shift y by 0.1, double h
    assert decode_boxes(codes, anchors)[0].tolist() == pytest.approx([0.1, 0.1, 0.9, 0.5], abs=1e-6)


def test_multiclass_nms_suppresses_on_unclipped_boxes():
    # Clipped, these two overlap with IoU 0.75; unclipped only 0.43: the TF graph runs NMS before clipping.
    boxes = torch.tensor([[0.0, -0.4, 0.5, 0.3], [0.0, 0.0, 0.5, 0.4]])
    scores = torch.tensor([[0.9], [0.8]])
    _, kept, _ = multiclass_nms(boxes, scores, score_threshold=0.05, iou_threshold=0.6, max_per_class=100,
                                max_total=100)
    assert kept.tolist() == pytest.approx([0.9, 0.8])


def test_multiclass_nms_clips_drops_empty_and_caps_per_class():
    boxes = torch.tensor([
        [0.0, 0.0, 0.5, 0.5],
        [0.0, 0.0, 0.5, 0.49],  # IoU 0.98 with the first: whichever scores lower in a class is suppressed
        [0.5, 0.5, 1.5, 1.5],  # clipped to [0.5, 0.5, 1, 1]
        [1.2, 1.2, 1.4, 1.4],  # zero area after clipping: dropped
    ])
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.3, 0.0], [0.99, 0.99]])
    out_boxes, out_scores, classes = multiclass_nms(
        boxes, scores, score_threshold=0.05, iou_threshold=0.6, max_per_class=100, max_total=100
    )
    assert out_scores.tolist() == pytest.approx([0.9, 0.7, 0.3])
    assert classes.tolist() == [0, 1, 0]
    assert out_boxes[1].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.49])
    assert out_boxes[2].tolist() == [0.5, 0.5, 1.0, 1.0]
    # TF caps each class before it drops empty boxes: the best box of each class here is the empty one.
    _, capped, _ = multiclass_nms(boxes, scores, score_threshold=0.05, iou_threshold=0.6,
                                  max_per_class=1, max_total=100)
    assert capped.tolist() == []
    _, capped, _ = multiclass_nms(boxes[:3], scores[:3], score_threshold=0.05, iou_threshold=0.6,
                                  max_per_class=1, max_total=100)
    assert capped.tolist() == pytest.approx([0.9, 0.7])


def test_multiclass_nms_prefix_search_equals_full_nms():
    from torchvision.ops import nms

    g = torch.Generator().manual_seed(0)
    centres = torch.rand(1917, 2, generator=g)
    sizes = torch.rand(1917, 2, generator=g) * 0.1 + 0.01
    boxes = torch.cat([centres - sizes, centres + sizes], dim=1)
    scores = torch.rand(1917, 1, generator=g)
    _, got, _ = multiclass_nms(boxes, scores, score_threshold=0.0, iou_threshold=0.6,
                               max_per_class=100, max_total=100)
    keep = nms(boxes, scores[:, 0], 0.6)[:100]
    assert torch.equal(got, scores[keep, 0])
