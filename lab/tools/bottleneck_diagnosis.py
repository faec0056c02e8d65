"""Where a trained bottleneck loses AP (run by hand; about 3 min per checkpoint on 2 cores).

For each checkpoint, on the person detector and the eval harness's 482 COCO images:

* AP with the latent rounded (what the deployed bitstream carries; equals ``splitinf eval --bottleneck``)
  against AP with the float latent handed to the decoder unrounded. If the two agree, quantization and the
  entropy model are not what costs accuracy — the latent's width and the decoder are;
* the relative error of each feature map the detection heads read (first map first), on COCO images, on
  fresh random crops of the VOC training photos (new crops, same photos) and on 2×2 mosaics of such crops.
  A gap between COCO and crops is the part of the error that does not carry over from the training
  pictures; mosaics (shrunk crops: small objects, sharp detail, like the COCO images) tell how much of that
  gap is the pictures' scale rather than over-fitting or the VOC→COCO shift.

    .venv/bin/python lab/tools/bottleneck_diagnosis.py lab/checkpoints/person_s16t7_c32_b0012_d.pt --json
"""

import argparse
import json

import numpy as np
import torch
from splitinf.bottleneck import load_for
from splitinf.bottleneck.distill import per_map_errors
from splitinf.head import Head
from splitinf.tail import Tail

from splitinf.data import ALL_UNION, coco_images, read_image, resolve
from splitinf.evaluation.harness import evaluate_coco
from splitinf.evaluation.pipelines import Pipeline
from splitinf.label_free import load_rgb, random_crop, random_mosaic, voc_photos
from splitinf.models import build_detector, detector_spec

MODEL = "ssdlite_mobilenet_v2_person"


def latent_pipelines(detector, bottleneck, checkpoint: str) -> list[Pipeline]:
    """The checkpoint's split with the latent rounded, and with it left as floats."""
    head, tail = Head(detector, None, bottleneck), Tail(detector, None, bottleneck)

    def rounded(image):
        latent, geometries = head([image])
        return tail(torch.round(latent), geometries)[0], None

    def unrounded(image):
        latent, geometries = head([image])
        return tail(latent, geometries)[0], None

    return [Pipeline(f"{checkpoint} rounded", rounded, "split"), Pipeline(f"{checkpoint} float", unrounded, "split")]


def map_errors(detector, bottleneck, images: list[torch.Tensor], batch: int = 16) -> list[float]:
    """Mean relative error of each detection-head map, the bottleneck (rounded latent) against the teacher."""
    tap, restore = bottleneck.config.tap, bottleneck.config.restore
    errors = []
    for start in range(0, len(images), batch):
        x, _ = detector.preprocess(images[start : start + batch])
        features = detector.trunk[: tap + 1](x)
        wanted = detector.neck(detector.trunk[tap + 1 :](features))
        rebuilt, _ = bottleneck(features)
        errors.append(per_map_errors(detector.neck(detector.trunk[restore + 1 :](rebuilt)), wanted))
    return np.mean(errors, axis=0).round(4).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="bottleneck checkpoints of the person detector")
    parser.add_argument("--map-images", type=int, default=160, help="COCO images and crops for the map errors")
    parser.add_argument("--limit", type=int, default=None, help="only the first N COCO images for AP")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    detector = build_detector(MODEL, weights=detector_spec(MODEL).default_weights).eval()
    truth = json.loads(resolve(ALL_UNION).read_text())
    bottlenecks = {c: load_for(c, detector).eval() for c in args.checkpoints}
    pipelines = [p for c, b in bottlenecks.items() for p in latent_pipelines(detector, b, c)]
    scores = {s.pipeline.name: round(s.ap, 4) for s in
              evaluate_coco(pipelines, truth, coco_images(ALL_UNION, limit=args.limit), [1])}
    coco = [read_image(im.path) for im in coco_images(ALL_UNION, limit=args.map_images)]
    rng = np.random.default_rng(5)
    photos = voc_photos()
    crops = [random_crop(load_rgb(photos[i]), detector.input_size, rng)
             for i in rng.integers(0, len(photos), args.map_images)]
    mosaics = [random_mosaic([load_rgb(photos[i]) for i in rng.integers(0, len(photos), 4)], detector.input_size,
                             rng) for _ in range(args.map_images)]
    result = {}
    for checkpoint in args.checkpoints:
        result[checkpoint] = {
            "ap_rounded": scores[f"{checkpoint} rounded"], "ap_float": scores[f"{checkpoint} float"],
            "map_errors_coco": map_errors(detector, bottlenecks[checkpoint], coco),
            "map_errors_crops": map_errors(detector, bottlenecks[checkpoint], crops),
            "map_errors_mosaics": map_errors(detector, bottlenecks[checkpoint], mosaics),
        }
        row = result[checkpoint]
        print(f"{checkpoint}: AP rounded {row['ap_rounded']:.4f}, float {row['ap_float']:.4f}\n"
              f"  map errors, COCO    {row['map_errors_coco']}\n  map errors, crops   {row['map_errors_crops']}\n"
              f"  map errors, mosaics {row['map_errors_mosaics']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
