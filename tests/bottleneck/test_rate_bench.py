"""``splitinf bench rate``: which checkpoint meets which target, and its JSON and plot on a real run."""

import json

import numpy as np
import pytest
import torch
from splitinf.bottleneck import load_for
from splitinf.head import Head

from splitinf.bench.rate import TARGETS, pick, spread_labels
from splitinf.cli import main
from splitinf.data import ALL_UNION, coco_images, read_image
from splitinf.models import build_detector
from splitinf.runtime.setup import DEFAULT_MODEL
from splitinf.weights.checkpoints import DEFAULT_BOTTLENECK, find_checkpoint

TEACHER_AP = 0.19
TAP7 = DEFAULT_BOTTLENECK  # the shipped tap-7 head, by name


def point(name: str, ap: float, kb: float, macs: float, jpeg_kb: float = 28.0) -> dict:
    return {"checkpoint": name, "ap": ap, "bytes": kb * 1024, "bytes_ratio": kb / jpeg_kb, "head_macs_ratio": macs}


def test_each_target_takes_only_checkpoints_inside_all_three_bounds():
    points = [point("close_but_big", 0.185, 3.0, 0.6),  # 3.0 / 28 = 0.107 of the bytes: over 1/10
              point("accurate", 0.181, 2.7, 0.6), point("too_far_below", 0.1795, 2.0, 0.6),
              point("light", 0.166, 2.7, 0.39), point("light_worse", 0.1655, 1.3, 0.39),
              point("heavy", 0.17, 1.0, 0.41)]
    assert pick(points, TEACHER_AP, TARGETS["accurate"])["checkpoint"] == "accurate"  # 0.1795 is 1.05 points below
    assert pick(points, TEACHER_AP, TARGETS["light"])["checkpoint"] == "light"  # the most accurate light head
    assert pick(points, TEACHER_AP, TARGETS["stretch"]) is None
    stretch = point("stretch", 0.182, 1.3, 0.25)
    assert pick(points + [stretch], TEACHER_AP, TARGETS["stretch"]) == stretch
    assert pick([dict(stretch, bytes_ratio=None)], TEACHER_AP, TARGETS["stretch"]) is None  # no JPEG qualified


def test_plot_labels_of_points_at_the_same_rate_are_pushed_apart():
    points = [point("a", 0.1610, 2.6, 0.6), point("b", 0.1600, 2.7, 0.6), point("far", 0.1605, 1.3, 0.6)]
    assert spread_labels(points) == pytest.approx([0.1625, 0.1600, 0.1605])  # b's own AP; a a gap above it


def conv_macs_share_of_the_head() -> float:
    """Counted another way than the bench: forward hooks on every convolution, out_h·out_w·out_c·in_c/groups·k²."""
    detector = build_detector(DEFAULT_MODEL, weights="pretrained")
    head = Head(detector, bottleneck=load_for(find_checkpoint(TAP7), detector)).eval()
    macs = [0]

    def count(module, inputs, output):
        kh, kw = module.kernel_size
        macs[0] += output.numel() * module.in_channels // module.groups * kh * kw

    convolutions = {id(m): m for m in [*detector.modules(), *head.modules()] if isinstance(m, torch.nn.Conv2d)}
    handles = [m.register_forward_hook(count) for m in convolutions.values()]  # the trunk's blocks are shared
    image = torch.zeros(3, 300, 300, dtype=torch.uint8)
    with torch.inference_mode():
        detector([image])
        whole, macs[0] = macs[0], 0
        head([image])
    for handle in handles:
        handle.remove()
    return macs[0] / whole


def mean_bitstream_bytes(images: int) -> float:
    """What the shipped head's bitstream takes on the first COCO images, computed without the bench."""
    detector = build_detector(DEFAULT_MODEL, weights="pretrained")
    bottleneck = load_for(find_checkpoint(TAP7), detector)
    head, codec = Head(detector, bottleneck=bottleneck).eval(), bottleneck.codec()
    with torch.inference_mode():
        return float(np.mean([len(codec.compress(head([read_image(r.path)])[0][0]))
                              for r in coco_images(ALL_UNION, limit=images)]))


def test_bench_rate_scores_a_checkpoint_against_jpeg_on_real_images(tmp_path, capsys):
    plot = tmp_path / "rate.png"
    argv = ["bench", "rate", "--bottleneck", str(TAP7), "--qualities", "90",
            "--images", "3", "--plot", str(plot), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 3 and set(TARGETS) <= set(result)
    [checkpoint] = result["checkpoints"]
    assert checkpoint["checkpoint"] == "person_s16t7_c32_k27_gpu"
    assert checkpoint["head_macs_ratio"] == pytest.approx(conv_macs_share_of_the_head(), rel=0.02)
    assert checkpoint["bytes"] == pytest.approx(mean_bitstream_bytes(3), abs=1) and checkpoint["head_ms"] > 0
    names = {b["name"] for b in result["baselines"]}
    assert {"unsplit", "8-bit s8", "8-bit s16"} <= names and len(names) == 5  # + JPEG q90 at both resolutions
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
