"""Shared fixtures: real images from the shared data, decoded once per session."""

from __future__ import annotations

import pytest
import torch

from splitinf.data import VAL_UNION, coco_images, read_image


@pytest.fixture(scope="session")
def coco_val_images() -> list[torch.Tensor]:
    """Three real COCO val2017 images (different sizes), as uint8 RGB tensors."""
    return [read_image(im.path) for im in coco_images(VAL_UNION, limit=3)]
