"""How much of the first detection map the person detector needs (run by hand; about 5 min on 2 cores).

Everything the SSDLite heads read derives from one map: the 576-channel expansion of MobileNetV2 block 14
(``features[14].conv[0]``, 19×19). This script measures, on the 482 COCO images of the eval harness:

* AP when that map gets Gaussian noise of a given relative MSE (how precise a bottleneck must be);
* AP when block 13's 96-channel output is replaced by its projection on the top-k principal components,
  fitted on label-free VOC/video crops (how many dimensions the trunk output really uses);
* the per-position Gaussian reverse-water-filling bound on that map's relative error (pre-activation, so an
  overestimate) at a given number of bits per 19×19 position — 65 bits is the 2.88 KB/frame budget.

    .venv/bin/python lab/tools/feature_map_sensitivity.py --json
"""

import argparse
import json

import numpy as np
import torch

from splitinf.data import ALL_UNION, coco_images, resolve
from splitinf.evaluation.harness import evaluate_coco
from splitinf.evaluation.pipelines import Pipeline, unsplit
from splitinf.label_free import load_rgb, random_crop, video_sources, voc_photos
from splitinf.models import build_detector, detector_spec

MODEL = "ssdlite_mobilenet_v2_person"


def fit_crops(detector, count: int, seed: int = 0) -> torch.Tensor:
    """Block-13 outputs of ``count`` random label-free crops (never COCO)."""
    rng = np.random.default_rng(seed)
    sources = voc_photos() + video_sources(step=25)
    images = [random_crop(load_rgb(sources[i]), detector.input_size, rng) for i in rng.integers(0, len(sources), count)]
    x, _ = detector.preprocess(images)
    return detector.trunk(x)


def maps_from_first(detector, first: torch.Tensor) -> list[torch.Tensor]:
    """The neck, starting from a (perturbed) first map."""
    x = detector.features[15:](detector.features[14].conv[1:](first))
    maps = [first, x]
    for block in detector.extras:
        x = block(x)
        maps.append(x)
    return maps


def noisy(detector, relative_mse: float) -> Pipeline:
    generator = torch.Generator().manual_seed(0)

    def run(image):
        x, geometries = detector.preprocess([image])
        first = detector.features[14].conv[0](detector.trunk(x))
        scale = (relative_mse * first.pow(2).mean()).sqrt()
        first = first + scale * torch.randn(first.shape, generator=generator)
        return detector.detect(maps_from_first(detector, first), geometries)[0], None

    return Pipeline(f"noise relative MSE {relative_mse}", run, "split")


def projected(detector, mean: torch.Tensor, basis: torch.Tensor) -> Pipeline:
    def run(image):
        x, geometries = detector.preprocess([image])
        out = detector.trunk(x)
        flat = out.permute(0, 2, 3, 1).reshape(-1, out.shape[1]) - mean
        rebuilt = ((flat @ basis.T) @ basis + mean).reshape(out.shape[0], *out.shape[2:], -1).permute(0, 3, 1, 2)
        return detector.detect(detector.neck(rebuilt), geometries)[0], None

    return Pipeline(f"PCA {basis.shape[0]} of {basis.shape[1]}", run, "split")


def water_filling_error(detector, trunk_out: torch.Tensor, bits_per_position: float) -> float:
    """Gaussian rate–distortion bound of the first map's relative error, coding each position on its own."""
    conv, bn = detector.features[14].conv[0][0], detector.features[14].conv[0][1]
    weight = (conv.weight[:, :, 0, 0] * (bn.weight / torch.sqrt(bn.running_var + bn.eps))[:, None]).double()
    flat = trunk_out.permute(0, 2, 3, 1).reshape(-1, trunk_out.shape[1]).double()
    centred = flat - flat.mean(0)
    covariance = centred.T @ centred / len(centred)
    root = torch.linalg.cholesky(covariance + 1e-9 * torch.eye(len(covariance), dtype=torch.float64))
    variances = torch.linalg.eigvalsh(root.T @ weight.T @ weight @ root).clamp_min(0).numpy() / weight.shape[0]
    energy = float(detector.features[14].conv[0](trunk_out).double().pow(2).mean())
    low, high = 1e-12, float(variances.max())
    for _ in range(200):  # bisect the water level that spends the bit budget
        level = (low + high) / 2
        rate = sum(0.5 * np.log2(v / level) for v in variances if v > level)
        low, high = (level, high) if rate > bits_per_position else (low, level)
    return float(sum(min(v, level) for v in variances)) / energy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="0.04,0.09,0.2", help="relative MSEs of the noise on the first map")
    parser.add_argument("--components", default="32,48,64", help="principal components of block 13 to keep")
    parser.add_argument("--bits", default="65", help="bits per position for the rate–distortion bound")
    parser.add_argument("--crops", type=int, default=400, help="label-free crops to fit the PCA on")
    parser.add_argument("--limit", type=int, default=None, help="only the first N COCO images")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    detector = build_detector(MODEL, weights=detector_spec(MODEL).default_weights).eval()
    trunk_out = fit_crops(detector, args.crops)
    flat = trunk_out.permute(0, 2, 3, 1).reshape(-1, trunk_out.shape[1])
    mean = flat.mean(0)
    _, _, right = torch.linalg.svd(flat - mean, full_matrices=False)
    pipelines = [unsplit(detector)] + [noisy(detector, float(m)) for m in args.noise.split(",")]
    pipelines += [projected(detector, mean, right[: int(k)]) for k in args.components.split(",")]
    truth = json.loads(resolve(ALL_UNION).read_text())
    scores = evaluate_coco(pipelines, truth, coco_images(ALL_UNION, limit=args.limit), [1])
    result = {"ap": {s.pipeline.name: round(s.ap, 4) for s in scores},
              "bound_relative_error": {b: round(water_filling_error(detector, trunk_out, float(b)), 3)
                                       for b in args.bits.split(",")}}
    for name, ap in result["ap"].items():
        print(f"{name:28s} AP {ap:.4f}")
    for bits, error in result["bound_relative_error"].items():
        print(f"bound at {bits} bits/position: relative error {error}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
