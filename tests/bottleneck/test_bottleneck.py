"""The injected bottleneck: shapes, device/edge halves, checkpoints, and a short real training run."""

import json
import math

import pytest
import torch
from splitinf.bottleneck import (
    Bottleneck,
    BottleneckConfig,
    CheckpointError,
    CodecError,
    MinMax8Codec,
    load_for,
)
from splitinf.head import Head
from splitinf.tail import Tail

from splitinf.cli import main
from splitinf.models import build_detector
from splitinf.models.compute import count_macs
from splitinf.training.distill import RateController


@pytest.fixture(scope="module")
def detector():
    return build_detector("ssdlite_mobilenet_v2_person")


def trained_like(detector, codec="entropy"):
    config = BottleneckConfig("ssdlite_mobilenet_v2_person", tap=6, restore=13, channels=8, codec=codec)
    bottleneck = Bottleneck(config, detector.trunk, detector.trunk_channels()).eval()
    if codec == "entropy":
        bottleneck.prior.update_tables()
    return bottleneck


def test_device_runs_less_than_the_unsplit_prefix(detector, coco_val_images):
    bottleneck = trained_like(detector)
    head = Head(detector, bottleneck=bottleneck)
    prefix = Head(detector, "s16")  # what the device would run without a bottleneck restoring block 13
    x, _ = detector.preprocess(coco_val_images[:1])
    with torch.inference_mode():
        latent, _ = head(coco_val_images[:1])
    assert latent.shape == (1, 8, 19, 19)  # stride-2 encoder: 16x fewer positions than the 32x38x38 tap
    assert count_macs(lambda: head.layers(x)) < 0.75 * count_macs(lambda: prefix.layers(x))


def within_the_image(detections: dict, image: torch.Tensor) -> bool:
    """Boxes in pixels of the original image: the tail mapped them back through the frame's geometry."""
    height, width = image.shape[-2:]
    boxes = detections["boxes"]
    return len(boxes) > 0 and bool((boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
                                   and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
                                   and (boxes[:, 2] >= boxes[:, 0]).all())


def test_bottleneck_split_runs_end_to_end_through_a_real_bitstream(detector, coco_val_images):
    bottleneck = trained_like(detector)
    head, tail = Head(detector, bottleneck=bottleneck), Tail(detector, bottleneck=bottleneck)
    codec = bottleneck.codec()
    with torch.inference_mode():
        latent, geometries = head(coco_val_images[:1])
        data = codec.compress(latent[0])
        detections = tail(codec.decompress(data)[None], geometries)[0]
    assert len(data) < 8 * 19 * 19  # fewer bytes than one per symbol
    assert within_the_image(detections, coco_val_images[0])


def test_restore_at_the_tap_is_a_pure_autoencoder(detector, coco_val_images):
    config = BottleneckConfig("ssdlite_mobilenet_v2_person", tap=13, restore=13, channels=8, stride=1)
    bottleneck = Bottleneck(config, detector.trunk, detector.trunk_channels()).eval()
    bottleneck.prior.update_tables()
    head, tail = Head(detector, bottleneck=bottleneck), Tail(detector, bottleneck=bottleneck)
    with torch.inference_mode():
        latent, geometries = head(coco_val_images[:1])
        rebuilt, _ = bottleneck(torch.randn(1, 96, 19, 19))
        detections = tail(latent, geometries)[0]
    assert latent.shape == (1, 8, 19, 19) and rebuilt.shape == (1, 96, 19, 19)
    assert len(head.layers) == len(detector.trunk) + 1  # the whole trunk, then the encoder
    assert within_the_image(detections, coco_val_images[0])


def test_checkpoint_round_trip_and_refusals(detector, tmp_path):
    bottleneck = trained_like(detector)
    path = tmp_path / "b.pt"
    bottleneck.save(path, metadata={"command": "test"})
    loaded = load_for(path, detector)
    assert loaded.fingerprint() == bottleneck.fingerprint()
    latent = torch.randn(8, 19, 19) * 3
    assert loaded.codec().decompress(bottleneck.codec().compress(latent)).shape == (8, 19, 19)
    other = build_detector("ssdlite_mobilenet_v2")
    with pytest.raises(CheckpointError, match="trained for ssdlite_mobilenet_v2_person, not ssdlite_mobilenet_v2"):
        load_for(path, other)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_for(damaged, detector)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_for(tmp_path / "none.pt", detector)
    other_tables = trained_like(detector)
    torch.manual_seed(5)
    for p in other_tables.prior.parameters():
        p.data.add_(torch.randn_like(p) * 0.5)
    other_tables.prior.update_tables()
    with pytest.raises(CodecError, match="coded with tables"):
        other_tables.codec().decompress(bottleneck.codec().compress(latent))


def test_minmax8_bottleneck_is_the_plain_hnd_baseline(detector):
    bottleneck = trained_like(detector, codec="minmax8")
    assert isinstance(bottleneck.codec(), MinMax8Codec)
    rebuilt, bits = bottleneck(torch.randn(2, 32, 38, 38))
    assert rebuilt.shape == (2, 96, 19, 19) and float(bits) == 0.0


def test_bad_configs_are_refused(detector):
    with pytest.raises(ValueError, match="tap <= restore"):
        Bottleneck(BottleneckConfig("m", tap=13, restore=6), detector.trunk, detector.trunk_channels())
    with pytest.raises(ValueError, match="codec must be one of"):
        Bottleneck(BottleneckConfig("m", tap=6, restore=13, codec="zip"), detector.trunk, detector.trunk_channels())


def test_train_command_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    assert main(["train", "--steps", "2", "--batch", "2", "--channels", "4", "--video-step", "200",
                 "--out", str(out)]) == 0
    detector = build_detector("ssdlite_mobilenet_v2_person")
    bottleneck = load_for(out, detector)
    assert bottleneck.config.channels == 4
    import torch as t

    metadata = t.load(out, weights_only=True)["metadata"]
    assert metadata["command"].startswith("splitinf train") and metadata["steps"] == 2
    assert (tmp_path / "tiny.pt.log.jsonl").read_text().count("distill") >= 1


def test_output_distillation_is_zero_for_the_teacher_and_weighs_confident_anchors(coco_val_images):
    from splitinf.bottleneck.distill import output_distillation_loss

    detector = build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")
    with torch.no_grad():
        x, _ = detector.preprocess(coco_val_images[:2])
        logits, boxes = detector.anchor_outputs(detector.neck(detector.trunk(x)))
    classes, box_term = output_distillation_loss((logits, boxes), (logits, boxes))
    assert abs(float(classes)) < 1e-3 and float(box_term) == 0.0
    assert float(output_distillation_loss((logits + 1.0, boxes), (logits, boxes))[0]) > 0.01
    # The same box error costs more on the anchor the teacher is most sure of than on its least sure one.
    confident, doubtful = logits[0, :, 0].argmax(), logits[0, :, 0].argmin()
    costs = []
    for anchor in (confident, doubtful):
        shifted = boxes.clone()
        shifted[0, anchor] += 1.0
        costs.append(float(output_distillation_loss((logits, shifted), (logits, boxes))[1]))
    assert costs[0] > 100 * costs[1] > 0


def test_fine_tuning_with_the_detection_loss_trains_the_copied_blocks(tmp_path):
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    common = ["--steps", "2", "--batch", "2", "--video-step", "200"]
    assert main(["train", *common, "--channels", "4", "--out", str(first)]) == 0
    assert main(["train", *common, "--init", str(first), "--loss", "detect", "--channels", "9",
                 "--out", str(second)]) == 0
    detector = build_detector("ssdlite_mobilenet_v2_person")
    before, after = load_for(first, detector), load_for(second, detector)
    assert after.config == before.config  # the shape comes from --init, not from --channels
    metadata = torch.load(second, weights_only=True)["metadata"]
    assert metadata["init"] == str(first) and "--channels" not in metadata["command"]  # it would be ignored
    copied_block = detector.trunk[after.config.first_copied].state_dict()
    changed = after.decoder[3].state_dict()
    assert any(not torch.equal(copied_block[k], changed[k]) for k in copied_block if k.endswith("weight"))


def test_rate_controller_steers_beta_to_the_byte_budget():
    # a stand-in for training: the rate falls as β rises (rate = 1 / sqrt(β)), 2 KB/frame is wanted
    controller = RateController(beta=0.01, target_kb=2.0)
    for _ in range(3000):
        controller.update(1 / math.sqrt(controller.beta))
    assert 1 / math.sqrt(controller.beta) == pytest.approx(2.0, rel=0.01)
    fixed = RateController(beta=0.01, target_kb=None)
    assert fixed.update(50.0) == 0.01  # no target: β stays what --beta said
    wild = RateController(beta=1.0, target_kb=1.0, hold=0.5, gain=0.05)
    betas = [wild.update(1e6, progress) for progress in (0.25, 0.5, 0.75)]
    assert betas == pytest.approx([1.0, 1.0, math.exp(0.05)])  # held for half the run, then ≤ e^gain


def test_train_command_with_a_byte_budget_logs_beta_and_refuses_a_bad_budget(tmp_path, capsys):
    out = tmp_path / "budget.pt"
    assert main(["train", "--steps", "3", "--batch", "2", "--channels", "4", "--video-step", "200",
                 "--beta", "0.5", "--target-kb", "0.01", "--out", str(out)]) == 0
    import torch as t

    metadata = t.load(out, weights_only=True)["metadata"]
    assert metadata["target_kb"] == 0.01 and metadata["beta"] > 0.5  # the rate is far above 10 bytes: β rose
    last = json.loads((tmp_path / "budget.pt.log.jsonl").read_text().splitlines()[-1])
    assert last["beta"] == pytest.approx(metadata["beta"])
    with pytest.raises(SystemExit):
        main(["train", "--target-kb", "-1", "--out", str(tmp_path / "never.pt")])
    assert "--target-kb: needs a positive number of kilobytes per frame, got '-1'" in capsys.readouterr().err


def test_train_command_refuses_a_mosaic_share_outside_zero_to_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--mosaic", "1.5", "--out", str(tmp_path / "never.pt")])
    assert "--mosaic: needs a share between 0 and 1, got '1.5'" in capsys.readouterr().err


def test_a_time_budget_ends_the_schedule_early_with_a_finished_decay(monkeypatch):
    from splitinf.training import distill

    clock = [100.0]
    monkeypatch.setattr(distill.time, "monotonic", lambda: clock[0])
    schedule = distill.Schedule(steps=1000, seconds=60)
    assert schedule.progress(10) == pytest.approx(0.01)  # steps further than time
    clock[0] += 30
    assert schedule.progress(20) == pytest.approx(0.5)  # time further than steps
    assert schedule.lr_scale(20, 0.5) == pytest.approx(0.5)  # warmed up by time, half-way down the cosine
    clock[0] += 31
    assert schedule.progress(30) == 1.0 and schedule.lr_scale(30, 1.0) == pytest.approx(0.0)
    by_steps = distill.Schedule(steps=1000)  # no budget: warm-up over steps // 20, as before the option
    assert by_steps.lr_scale(25, by_steps.progress(25)) == pytest.approx(0.5)


def test_train_command_refuses_a_time_budget_that_is_no_positive_number(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--max-minutes", "0", "--out", str(tmp_path / "never.pt")])
    assert "--max-minutes: needs a positive number of minutes, got '0'" in capsys.readouterr().err
