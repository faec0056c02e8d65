"""MobileDets as the TF Object Detection API defines them: size and compute against the paper."""

import pytest
import torch
from splitinf.head import Head
from splitinf.tail import Tail

from splitinf.models import build_detector
from splitinf.models.compute import count_macs, parameter_count
from splitinf.models.mobiledet import scale_filters


def whole_model_macs(detector) -> int:
    x = torch.zeros(1, 3, 320, 320)
    return count_macs(lambda: detector.head(detector.neck(detector.trunk(x))))


@pytest.mark.parametrize(("name", "params", "macs"), [
    ("ssdlite_mobiledet_cpu", 4.21e6, 0.45e9),  # Xiong et al. 2021, Table 3 (COCO, 91 classes)
    ("ssdlite_mobiledet_dsp", 7.16e6, 2.82e9),
])
def test_parameters_and_multiply_adds_match_the_paper(name, params, macs):
    detector = build_detector(name)
    assert parameter_count(detector) == pytest.approx(params, rel=0.02)
    assert whole_model_macs(detector) == pytest.approx(macs, rel=0.05)


def test_feature_maps_are_c4_c5_and_four_extras_at_320():
    detector = build_detector("ssdlite_mobiledet_cpu")
    with torch.inference_mode():
        maps = detector.neck(detector.trunk(torch.zeros(1, 3, 320, 320)))
    assert [tuple(m.shape[1:]) for m in maps] == [(72, 20, 20), (144, 10, 10), (512, 5, 5), (256, 3, 3),
                                                  (256, 2, 2), (128, 1, 1)]
    assert detector.anchors.shape == (20 * 20 * 3 + (100 + 25 + 9 + 4 + 1) * 6, 4)


def test_filter_rounding_is_tf_half_up():
    assert [scale_filters(f) for f in (8, 16, 72, 104, 144)] == [8, 16, 72, 104, 144]
    assert scale_filters(72 * 8, 0.25) == 144 and scale_filters(12) == 16 and scale_filters(3) == 8


def test_mobiledet_splits_are_exact(coco_val_images):
    detector = build_detector("ssdlite_mobiledet_cpu")
    detector.set_score_threshold(0.0)
    image = coco_val_images[0]
    with torch.inference_mode():
        reference = detector([image])[0]
        for point in detector.split_points:
            out = Tail(detector, point.key)(*Head(detector, point.key)([image]))[0]
            assert all(torch.equal(reference[k], out[k]) for k in ("boxes", "scores", "labels"))
