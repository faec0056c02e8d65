"""``splitinf train``: distil a learned bottleneck into a pretrained detector (HND / GHND + β·rate).

The teacher is frozen. The student is the teacher with a bottleneck injected: trunk[: tap + 1] (shared with
the teacher, frozen) → encoder → quantizer → decoder (stem + copies of the teacher's blocks, fine-tuned) →
the teacher's trunk after ``restore`` and its neck (frozen; gradients flow through them). The loss is the
GHND sum over the feature maps the detection heads consume (or HND: the error at ``restore``) plus
``beta`` × kilobytes per frame from the learned entropy model. Images: VOC2007 trainval photos and video
frames with random crops, scales and flips — never COCO.

Example (the checkpoints in ``checkpoints/`` were made this way; see their metadata for exact commands):

    splitinf train --tap 6 --restore 13 --channels 16 --beta 0.02 --steps 1500 --out checkpoints/s8_b002.pt
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from splitinf.bottleneck import Bottleneck, BottleneckConfig
from splitinf.bottleneck.distill import ghnd_loss, hnd_loss, per_map_errors
from splitinf.models import build_detector, detector_names, detector_spec
from splitinf.training.images import load_rgb, random_crop, video_sources, voc_photos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite_mobilenet_v2_person", choices=detector_names())
    parser.add_argument("--weights", default=None, help="teacher weights (default: the model's pretrained ones)")
    parser.add_argument("--tap", type=int, default=6, help="trunk block the encoder follows (default 6: stride 8)")
    parser.add_argument("--restore", type=int, default=13, help="trunk block whose output the decoder rebuilds")
    parser.add_argument("--channels", type=int, default=16, help="bottleneck channels (default 16)")
    parser.add_argument("--width", type=int, default=64, help="encoder/decoder hidden channels (default 64)")
    parser.add_argument("--stride", type=int, default=2, choices=(1, 2), help="encoder stride (default 2)")
    parser.add_argument("--codec", default="entropy", choices=("entropy", "minmax8"))
    parser.add_argument("--loss", default="ghnd", choices=("ghnd", "hnd"))
    parser.add_argument("--beta", type=float, default=0.02, help="rate weight per KB/frame (default 0.02)")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps (default 1500)")
    parser.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the new layers")
    parser.add_argument("--video-step", type=int, default=3, help="use every N-th video frame (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when present)")
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.add_argument("--log", default=None, help="JSON-lines log (default: OUT with .log.jsonl)")


def command_line(args: argparse.Namespace) -> str:
    """The ``splitinf train`` command that reproduces this run (every option spelled out)."""
    options = []
    for key, value in vars(args).items():
        if value is not None:
            options += [f"--{key.replace('_', '-')}", str(value)]
    return "splitinf train " + shlex.join(options)


def freeze_batch_norm(module: nn.Module) -> None:
    """Keep copied teacher blocks on the teacher's BatchNorm statistics (small batches would spoil them)."""
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d):
            child.eval()


def main(args: argparse.Namespace) -> int:
    started = time.time()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    spec = detector_spec(args.model)
    teacher = build_detector(args.model, weights=args.weights or spec.default_weights).to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    config = BottleneckConfig(args.model, args.tap, args.restore, args.channels, args.width, args.stride, args.codec)
    bottleneck = Bottleneck(config, teacher.trunk, teacher.trunk_channels()).to(device)
    for p in bottleneck.parameters():
        p.requires_grad_(True)
    trunk = teacher.trunk
    prefix, teacher_middle, rest = trunk[: args.tap + 1], trunk[args.tap + 1 :], trunk[args.restore + 1 :]
    copied = bottleneck.decoder[3:]
    new_params = [p for n, p in bottleneck.named_parameters() if not n.startswith("decoder.") or
                  int(n.split(".")[1]) < 3]
    optimizer = torch.optim.AdamW([
        {"params": new_params, "lr": args.lr},
        {"params": list(copied.parameters()), "lr": args.lr * 0.2},
    ], weight_decay=1e-5)
    peaks = [g["lr"] for g in optimizer.param_groups]
    warmup = max(args.steps // 20, 1)

    sources = voc_photos() + video_sources(step=args.video_step)
    print(f"training a {config} bottleneck on {len(sources)} images ({device}), {args.steps} steps "
          f"of {args.batch}", file=sys.stderr)
    log_path = Path(args.log or str(args.out) + ".log.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        steps_per_epoch = max(len(sources) // args.batch, 1)
        window: list[tuple[float, float, list[float]]] = []
        progress = tqdm(range(1, args.steps + 1), desc="train", unit="step")
        for step in progress:
            scale = min(step / warmup, 0.5 * (1 + math.cos(math.pi * step / args.steps)))
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * scale
            picks = rng.integers(0, len(sources), args.batch)
            images = [random_crop(load_rgb(sources[i]), teacher.input_size, rng) for i in picks]
            with torch.no_grad():
                x, _ = teacher.preprocess(images)
                tap_features = prefix(x.to(device))
                middle = teacher_middle[: args.restore - args.tap](tap_features)
                teacher_maps = teacher.neck(rest(middle))
            bottleneck.train()
            freeze_batch_norm(copied)
            rebuilt, bits = bottleneck(tap_features)
            if args.loss == "ghnd":
                student_maps = teacher.neck(rest(rebuilt))
                distill = ghnd_loss(student_maps, teacher_maps)
            else:
                student_maps = None
                distill = hnd_loss(rebuilt, middle)
            kilobytes = bits / len(images) / 8 / 1024
            loss = distill + args.beta * kilobytes
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            errors = per_map_errors(student_maps, teacher_maps) if student_maps is not None else []
            window.append((float(distill), float(kilobytes), errors))
            progress.set_postfix(distill=f"{float(distill):.4f}", KB=f"{float(kilobytes):.2f}")
            if step % steps_per_epoch == 0 or step == args.steps:
                distills, kbs, errs = zip(*window)
                record = {"step": step, "epoch": step / steps_per_epoch, "distill": float(np.mean(distills)),
                          "kb_per_frame": float(np.mean(kbs)), "lr": optimizer.param_groups[0]["lr"],
                          "map_errors": np.mean(errs, axis=0).round(5).tolist() if errs[0] else [],
                          "elapsed_s": round(time.time() - started, 1)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                tqdm.write(f"epoch {record['epoch']:.2f}: distill {record['distill']:.4f}, "
                           f"{record['kb_per_frame']:.2f} KB/frame, map errors {record['map_errors']}")
                window.clear()
    bottleneck.eval().cpu()
    if config.codec == "entropy":
        bottleneck.prior.update_tables()
    wall = time.time() - started
    bottleneck.save(args.out, metadata={
        "command": command_line(args),
        "wall_time_s": round(wall, 1), "device": str(device), "torch": torch.__version__,
        "teacher": args.model, "teacher_weights": args.weights or spec.default_weights,
        "images": len(sources), "steps": args.steps, "batch": args.batch, "beta": args.beta, "loss": args.loss,
    })
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KB) after {wall / 60:.1f} min; "
          f"fingerprint {bottleneck.fingerprint()}", file=sys.stderr)
    return 0
