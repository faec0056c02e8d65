"""Generate the TensorFlow golden outputs of the pretrained person detector (run once, by hand).

TensorFlow is NOT a dependency of splitinf. This script runs in a throwaway virtual environment:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu opencv-python-headless numpy
    /tmp/tfvenv/bin/python tools/make_tf_golden.py --graph ~/.cache/splitinf/assets/frozen_inference_graph.pb \
        --data ../shared/data --out tests/golden/person_ssdlite_tf.json

It feeds the frozen graph the same uint8 RGB arrays the test builds (OpenCV decode, BGR→RGB) and records the
top-10 boxes and scores, plus a sha256 of each input array so the test can prove it fed the same pixels.
"""

import argparse
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

# (name, how the test builds the input): real COCO images of several sizes, a video frame, and a 300×300
# input (which skips the graph's resize).
INPUTS = [
    ("coco-tiny/val2017/000000338304.jpg", "image"),
    ("coco-tiny/val2017/000000005001.jpg", "image"),
    ("coco-tiny/val2017/000000435208.jpg", "image"),
    ("coco-mini/val2017/000000397133.jpg", "image"),
    ("coco-mini/val2017/000000000139.jpg", "image"),
    ("intel-sample-videos/one-by-one-person-detection.mp4", "frame:780"),
    ("coco-mini/val2017/000000214753.jpg", "resize300"),
]


def load(data: Path, name: str, how: str) -> np.ndarray:
    if how.startswith("frame:"):
        capture = cv2.VideoCapture(str(data / name))
        for _ in range(int(how.split(":")[1]) + 1):
            ok, bgr = capture.read()
        capture.release()
    else:
        bgr = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        if how == "resize300":
            bgr = cv2.resize(bgr, (300, 300), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(args.graph).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    records = []
    for name, how in INPUTS:
        rgb = load(Path(args.data), name, how)
        boxes, scores, classes, count = session.run(
            ["detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0"],
            feed_dict={"image_tensor:0": rgb[None]},
        )
        records.append({
            "source": name,
            "input": how,
            "shape": list(rgb.shape),
            "pixels_sha256": hashlib.sha256(rgb.tobytes()).hexdigest(),
            "num_detections": int(count[0]),
            "boxes_yxyx": boxes[0, :10].astype(float).round(7).tolist(),
            "scores": scores[0, :10].astype(float).round(7).tolist(),
            "classes": classes[0, :10].astype(int).tolist(),
        })
        print(name, how, rgb.shape, scores[0, :3])
    out = {"tensorflow": tf.__version__, "opencv": cv2.__version__, "graph_sha256":
           hashlib.sha256(Path(args.graph).read_bytes()).hexdigest(), "images": records}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
