import math

import pytest
import torch
from splitinf.head import Head
from splitinf.tail import Tail

from splitinf.models import WeightsError, build_detector, detector_names
from splitinf.models.compute import profile_splits

ALL = detector_names()


def test_zoo_has_the_mission_detectors():
    assert set(ALL) >= {
        "ssdlite320_mobilenet_v3_large",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "ssdlite_mobilenet_v2",
    }


def test_unknown_model_error_lists_known_models():
    with pytest.raises(ValueError, match="unknown model 'yolo'.*ssdlite_mobilenet_v2"):
        build_detector("yolo")


def test_unknown_split_error_lists_known_splits():
    detector = build_detector("ssdlite_mobilenet_v2")
    with pytest.raises(ValueError, match=r"unknown split point 's2'.*s4, s8, s16"):
        Head(detector, "s2")


@pytest.mark.parametrize("name", ALL)
def test_split_points_span_strides_4_8_16(name):
    detector = build_detector(name)
    assert {p.stride for p in detector.split_points} >= {4, 8, 16}
    image = torch.zeros((3, 240, 320), dtype=torch.uint8)
    with torch.inference_mode():
        x, _ = detector.preprocess([image])
        for point in detector.split_points:
            features, _ = Head(detector, point.key)([image])
            assert math.ceil(x.shape[-2] / point.stride) == features.shape[-2]


def test_person_architecture_has_the_published_parameter_count():
    detector = build_detector("ssdlite_mobilenet_v2", num_classes=2)
    trainable = sum(p.numel() for p in detector.parameters())
    moving = sum(b.numel() for n, b in detector.named_buffers() if "running_" in n)
    assert trainable == 3_045_126
    assert sum(p.numel() for p in detector.features.parameters()) == 2_223_872
    assert moving == 50_752


def test_builds_are_deterministic_and_leave_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_detector("ssdlite_mobilenet_v2", seed=7)
    after = torch.rand(1)
    b = build_detector("ssdlite_mobilenet_v2", seed=7)
    assert torch.equal(before, after)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("name", ["ssdlite_mobilenet_v2", "ssdlite320_mobilenet_v3_large",
                                  "fasterrcnn_mobilenet_v3_large_320_fpn"])
def test_head_then_tail_is_bitwise_the_unsplit_model(name, coco_val_images):
    detector = build_detector(name)
    detector.set_score_threshold(0.0)
    images = coco_val_images[:2]
    with torch.inference_mode():
        reference = [detector([im])[0] for im in images]
        for point in detector.split_points:
            head, tail = Head(detector, point.key), Tail(detector, point.key)
            for image, ref in zip(images, reference):
                out = tail(*head([image]))[0]
                assert len(ref["scores"]) > 0
                for key in ("boxes", "scores", "labels"):
                    assert torch.equal(ref[key], out[key]), (point.key, key)


def test_detections_are_in_original_image_pixels(coco_val_images):
    detector = build_detector("ssdlite_mobilenet_v2")
    detector.set_score_threshold(0.0)
    image = coco_val_images[0]
    with torch.inference_mode():
        boxes = detector([image])[0]["boxes"]
    height, width = image.shape[-2:]
    assert boxes[:, [0, 2]].max() <= width and boxes[:, [1, 3]].max() <= height
    assert boxes.min() >= 0 and (boxes[:, 2:] >= boxes[:, :2]).all()


def test_non_uint8_input_is_refused_with_what_was_expected():
    detector = build_detector("ssdlite_mobilenet_v2")
    with pytest.raises(ValueError, match=r"expected a uint8 RGB tensor of shape \[3, H, W\], got Tensor torch.float32"):
        detector([torch.zeros(3, 10, 10)])


def test_weight_file_of_the_wrong_shape_names_the_key(tmp_path):
    small = build_detector("ssdlite_mobilenet_v2", num_classes=2)
    path = tmp_path / "person.pt"
    torch.save(small.state_dict(), path)
    with pytest.raises(WeightsError, match=r"head\.classification_head\.module_list\.0\.1\.weight has shape "
                                           r"\(6, 576, 1, 1\), expected \(273, 576, 1, 1\)"):
        build_detector("ssdlite_mobilenet_v2", weights=path)
    loaded = build_detector("ssdlite_mobilenet_v2", num_classes=2, weights=path, seed=99)
    assert torch.equal(loaded.state_dict()["features.0.0.weight"], small.state_dict()["features.0.0.weight"])


def test_missing_or_garbage_weight_files_are_refused(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        build_detector("ssdlite_mobilenet_v2", weights=tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch state dict"):
        build_detector("ssdlite_mobilenet_v2", weights=garbage)


def test_torchvision_default_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="not in the torch cache.*never downloads"):
        build_detector("ssdlite320_mobilenet_v3_large", weights="DEFAULT")
    assert not any(tmp_path.rglob("*.pth"))


def test_torchvision_default_weights_load_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = build_detector("ssdlite320_mobilenet_v3_large", seed=5)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.model.state_dict(), cache / "ssdlite320_mobilenet_v3_large_coco-a79551df.pth")
    loaded = build_detector("ssdlite320_mobilenet_v3_large", weights="DEFAULT")
    for key, value in source.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_split_profile_sizes_and_compute_shares(coco_val_images):
    detector = build_detector("ssdlite_mobilenet_v2")
    profiles = profile_splits(detector, coco_val_images[0])
    assert [p.shape for p in profiles] == [(24, 75, 75), (32, 38, 38), (96, 19, 19)]
    assert [p.int8_bytes * 4 for p in profiles] == [p.float32_bytes for p in profiles]
    shares = [p.head_share for p in profiles]
    assert 0 < shares[0] < shares[1] < shares[2] < 1
