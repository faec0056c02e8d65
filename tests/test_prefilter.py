"""The prefilter: a cheap decision on early features, checkpoints, thresholds, and the device's accounting."""


import numpy as np
import pytest
import torch
from splitinf.head import Head, Prefilter, PrefilterConfig, PrefilterError, load_prefilter
from splitinf.head.modes import torch_engine

from splitinf.models import build_detector
from splitinf.models.compute import count_macs
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.setup import ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.training.prefilter import threshold_for_recall
from splitinf.weights.checkpoints import DEFAULT_PREFILTER, default_bottleneck, find_checkpoint


@pytest.fixture(scope="module")
def detector():
    return build_detector("ssdlite_mobilenet_v2_person")


def make(threshold: float, tap: int = 6, channels: int = 32) -> Prefilter:
    torch.manual_seed(0)
    return Prefilter(PrefilterConfig("ssdlite_mobilenet_v2_person", tap, channels, threshold=threshold)).eval()


def test_costs_a_few_percent_of_the_head(detector, coco_val_images):
    head = Head(detector, "s8")
    x, _ = detector.preprocess(coco_val_images[:1])
    with torch.inference_mode():
        early = head.layers(x)
    assert count_macs(lambda: make(0.5)(early)) < 0.10 * count_macs(lambda: head.layers(x))


def test_filtered_frames_stop_the_head_early(detector, coco_val_images):
    head = Head(detector, "s16")
    with torch.inference_mode():
        dropped, _, ms = head.forward_filtered(coco_val_images[:1], make(1 - 1e-9))
        kept, _, _ = head.forward_filtered(coco_val_images[:1], make(1e-9))
    assert dropped is None and ms >= 0
    assert kept.shape == (1, 96, 19, 19)
    with pytest.raises(ValueError, match="does not run"):
        Head(detector, "s4").forward_filtered(coco_val_images[:1], make(0.5, tap=6))


def test_checkpoint_round_trip_threshold_override_and_refusals(tmp_path):
    path = tmp_path / "p.pt"
    make(0.3).save(path, {"command": "test"})
    assert load_prefilter(path, "ssdlite_mobilenet_v2_person").config.threshold == 0.3
    assert load_prefilter(path, "ssdlite_mobilenet_v2_person", threshold=0.7).config.threshold == 0.7
    with pytest.raises(PrefilterError, match="trained for ssdlite_mobilenet_v2_person, not other"):
        load_prefilter(path, "other")
    with pytest.raises(PrefilterError, match="threshold must be in"):
        load_prefilter(path, "ssdlite_mobilenet_v2_person", threshold=1.5)
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(PrefilterError, match="cannot be read"):
        load_prefilter(tmp_path / "bad.pt", "ssdlite_mobilenet_v2_person")


def test_threshold_keeps_the_target_recall():
    probabilities = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1, 0.05])
    labels = np.array([1, 1, 1, 1, 0, 1, 0])
    threshold = threshold_for_recall(probabilities, labels, 0.8)  # may lose one of the five positives
    assert (probabilities[labels == 1] >= threshold).sum() == 4 and threshold > 0.2


@pytest.mark.parametrize(("threshold", "outcome"), [(1 - 1e-9, "filtered"), (1e-9, "local")])
def test_device_counts_filtered_frames_and_sends_nothing_for_them(threshold, outcome):
    setup = ModelSetup.build("ssdlite_mobilenet_v2_person", None, "s16", None)
    client = DeviceClient(torch_engine(setup, make(threshold)), None, mode="local")
    summary = client.run(FrameSource("intel-sample-videos/one-by-one-person-detection.mp4", realtime=False,
                                     fps=5), max_frames=4)
    assert summary["accounted"] == summary["frames"] == 4
    assert summary["counts"][outcome] + summary["counts"]["stale"] == 4 and summary["counts"][outcome] >= 1


def test_device_refuses_at_startup_a_prefilter_its_head_cannot_feed():
    # The shipped tap-7 bottleneck's head stops at block 7 and its encoder: a block-12 prefilter cannot run.
    setup = ModelSetup.build("ssdlite_mobilenet_v2_person", None, None, str(default_bottleneck()))
    with pytest.raises(ValueError, match=r"reads trunk block 12, which this head does not run \(it runs blocks 0–7\)"):
        DeviceClient(torch_engine(setup, make(0.5, tap=12, channels=96)), "tcp://127.0.0.1:9", mode="split")
    DeviceClient(torch_engine(setup, make(0.5, tap=6)), "tcp://127.0.0.1:9", mode="split")  # it runs block 6: accepted


def test_shipped_tap7_prefilter_pairs_with_the_shipped_head(coco_val_images):
    # The shipped head (blocks 0–7) and the prefilter trained at block 7 run together, and a kept frame
    # yields exactly the features the head alone produces.
    setup = ModelSetup.build("ssdlite_mobilenet_v2_person", None, None, str(default_bottleneck()))
    prefilter = load_prefilter(find_checkpoint(DEFAULT_PREFILTER), "ssdlite_mobilenet_v2_person").eval()
    assert prefilter.config.tap == 7
    DeviceClient(torch_engine(setup, prefilter), "tcp://127.0.0.1:9", mode="split")  # accepted at startup
    head = Head(setup.detector, None, setup.bottleneck)
    with torch.inference_mode():
        kept = [head.forward_filtered([image], prefilter)[0] for image in coco_val_images[:4]]
        alone = [head([image])[0] for image in coco_val_images[:4]]
    assert any(k is not None for k in kept)
    for filtered, plain in zip(kept, alone):
        if filtered is not None:
            assert torch.equal(filtered, plain)
