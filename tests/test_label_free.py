"""Label-free training pictures: crops and mosaics of the VOC photos and video frames."""

import numpy as np
import pytest
import torch

from splitinf.label_free import Source, random_crop, random_mosaic


def solid(value: int, height: int = 375, width: int = 500) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def test_a_crop_is_the_input_size_and_comes_from_the_picture():
    image = np.broadcast_to(np.arange(500, dtype=np.uint8)[None, :, None], (375, 500, 3)).copy()  # a ramp
    crop = random_crop(image, (300, 300), np.random.default_rng(0))
    assert crop.shape == (3, 300, 300) and crop.dtype == torch.uint8
    assert crop.float().std() > 0  # a piece of the ramp, not a flat or blank picture


def test_a_mosaic_tiles_one_shrunk_crop_of_each_image_row_major():
    mosaic = random_mosaic([solid(v) for v in (10, 80, 160, 240)], (300, 300), np.random.default_rng(0))
    assert mosaic.shape == (3, 300, 300) and mosaic.dtype == torch.uint8
    quadrants = [mosaic[:, :150, :150], mosaic[:, :150, 150:], mosaic[:, 150:, :150], mosaic[:, 150:, 150:]]
    assert [q.unique().tolist() for q in quadrants] == [[10], [80], [160], [240]]
    with pytest.raises(ValueError, match="a 2×2 mosaic needs 4 images, got 3"):
        random_mosaic([solid(0)] * 3, (300, 300), np.random.default_rng(0))


def test_teacher_batches_make_mosaics_at_the_asked_share():
    from splitinf.bottleneck import BottleneckConfig

    from splitinf.models import build_detector
    from splitinf.training.distill import TeacherBatches

    detector = build_detector("ssdlite_mobilenet_v2_person")
    config = BottleneckConfig("ssdlite_mobilenet_v2_person", tap=7, restore=13, channels=8)
    sources = [Source(f"solid-{v}", frame=solid(v)) for v in range(0, 256, 32)]  # 8 flat pictures
    for share, low, high in ((0.0, 0, 0), (0.5, 0.4, 0.6), (1.0, 0.99, 1.0)):
        batches = TeacherBatches(detector, config, sources, np.random.default_rng(1), torch.device("cpu"), share)
        pictures = [batches.picture(i % len(sources)) for i in range(200)]
        mixed = np.mean([len(p.unique()) > 1 for p in pictures])  # a crop of a flat picture is flat
        assert low <= mixed <= high, (share, mixed)
