"""``splitinf train``: distil a learned bottleneck into a pretrained detector (HND / GHND + β·rate).

The teacher is frozen. The student is the teacher with a bottleneck injected: trunk[: tap + 1] (shared with
the teacher, frozen) → encoder → quantizer → decoder (stem + copies of the teacher's blocks, fine-tuned) →
the teacher's trunk after ``restore`` and its neck (frozen; gradients flow through them). The loss is the
GHND sum over the feature maps the detection heads consume (or HND: the error at ``restore``; or
``detect``: GHND plus distillation of the per-anchor scores and boxes) plus ``beta`` × kilobytes per frame
from the learned entropy model. ``--init`` fine-tunes a trained checkpoint. Images: VOC2007 trainval photos
and video frames with random crops, scales and flips (``--mosaic``: also 2×2 mosaics of shrunk crops) —
never COCO.

Example (every checkpoint records the command that made it in its metadata: ``splitinf models
--checkpoints`` shows them):

    splitinf train --tap 6 --restore 13 --channels 16 --beta 0.02 --steps 1500 --out s8_b002.pt
    splitinf train --init s8_b002.pt --loss detect --lr 3e-4 --steps 500 --out s8_b002_d.pt
    splitinf-edge --bottleneck s8_b002_d.pt …    # and the same --bottleneck on the device

A checkpoint put in ``$SPLITINF_HOME/checkpoints`` (default ``~/.cache/splitinf/checkpoints``) is found by
its file name alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from splitinf.bottleneck import Bottleneck, BottleneckConfig, load_for, read_checkpoint
from splitinf.bottleneck.distill import ghnd_loss, hnd_loss, output_distillation_loss, per_map_errors
from splitinf.label_free import load_rgb, random_crop, random_mosaic, video_sources, voc_photos
from splitinf.models import build_detector, detector_names, detector_spec
from splitinf.options import deprecated_alias
from splitinf.report import print_json_line
from splitinf.weights.checkpoints import find_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="ssdlite_mobilenet_v2_person", choices=detector_names(), metavar="MODEL",
                        help="the teacher, a zoo detector (default %(default)s)")
    parser.add_argument("--weights", default=None, help="teacher weights (default: the model's pretrained ones)")
    parser.add_argument("--tap", type=int, default=6, help="trunk block the encoder follows (default 6: stride 8)")
    parser.add_argument("--restore", type=int, default=13,
                        help="trunk block whose output the decoder rebuilds (default %(default)s)")
    parser.add_argument("--channels", type=int, default=16, help="bottleneck channels (default 16)")
    parser.add_argument("--width", type=int, default=64, help="encoder/decoder hidden channels (default 64)")
    parser.add_argument("--stride", type=int, default=2, choices=(1, 2), help="encoder stride (default 2)")
    parser.add_argument("--codec", default="entropy", choices=("entropy", "minmax8"),
                        help="entropy: learned entropy model + range coder (default); minmax8: 8-bit, no entropy "
                             "coding")
    parser.add_argument("--loss", default="ghnd", choices=("ghnd", "hnd", "detect"),
                        help="ghnd: error of every feature map the detection heads read (default); hnd: error at "
                             "--restore; detect: ghnd plus the error of the per-anchor scores and boxes")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="fine-tune this trained checkpoint (its tap, restore, channels, width, stride and "
                             "codec replace those options)")
    parser.add_argument("--beta", type=float, default=0.02, help="rate weight per KB/frame (default 0.02)")
    parser.add_argument("--target-kb", type=positive_kilobytes, default=None, metavar="KB",
                        help="steer β during training so that the rate settles at KB kilobytes per frame (the "
                             "training estimate on crops; --beta is then the value it starts from, held for the "
                             "first quarter of the run while the entropy model learns). Without it β is fixed, "
                             "and the rate it gives must be found by trial")
    parser.add_argument("--rate-targets", type=kilobyte_list, default=None, metavar="KB,KB,…",
                        help="train a variable-rate bottleneck from --init (a single-rate checkpoint): one rate per "
                             "value, each with its own gain vectors and density, β steered per rate towards its "
                             "KB per frame; the rate nearest the --init checkpoint's own keeps its gains at 1")
    parser.add_argument("--freeze-gains", action="store_true",
                        help="with --rate-targets: keep each rate's gain vectors where they start (the byte ratio "
                             "of its target to the start's, to the power 0.8), so that the rates are a ladder of "
                             "quantisation steps and only the densities, encoder and decoder learn (learned gains "
                             "drifted together: more bits buy a distillation loss nothing, so the top rate fell)")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps (default 1500)")
    parser.add_argument("--max-minutes", type=positive_minutes, default=None, metavar="M",
                        help="also stop after M minutes of wall time (the teacher cache included); the warm-up, "
                             "the cosine decay and the β hold then follow whichever of steps and time runs out "
                             "first, so a run on a lent machine ends on time with a finished schedule. The "
                             "checkpoint's metadata records the steps done")
    parser.add_argument("--batch", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate of the new layers (default %(default)s)")
    parser.add_argument("--video-step", type=int, default=3, help="use every N-th video frame (default 3)")
    parser.add_argument("--cache", type=int, default=0, metavar="N",
                        help="precompute N random crops through the teacher once and train on them (much faster "
                             "on a CPU; about 0.9 MB of memory per crop at the s16 tap, GPU memory on CUDA); "
                             "0: fresh crops every step")
    parser.add_argument("--mosaic", type=share, default=0.0, metavar="P",
                        help="share of training pictures that are 2×2 mosaics of shrunk crops instead of one crop "
                             "(default 0): small objects and sharp detail, as in the COCO evaluation images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops and the new layers (default 0)")
    torch_device = parser.add_argument("--torch-device", default="auto", choices=("auto", "cpu", "cuda"),
                                       help="where to train (default auto: cuda when present)")
    deprecated_alias(parser, torch_device, "--device")
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.add_argument("--log", default=None, help="JSON-lines log (default: OUT with .log.jsonl)")
    parser.add_argument("--json", action="store_true",
                        help="print the checkpoint, its fingerprint and the run's numbers as one JSON line last")


def number(text: str) -> float:
    """``float(text)``, or NaN for text that is no number (which then fails every range check)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def positive_kilobytes(text: str) -> float:
    value = number(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"needs a positive number of kilobytes per frame, got {text!r}")
    return value


def positive_minutes(text: str) -> float:
    value = number(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"needs a positive number of minutes, got {text!r}")
    return value


def kilobyte_list(text: str) -> list[float]:
    values = [number(v) for v in text.split(",")]
    if len(values) < 2 or not all(0 < v < math.inf for v in values) or values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"needs at least two increasing positive kilobytes per frame, got {text!r}")
    return values


def variable_rate(single: Bottleneck, teacher, targets: list[float], own_kb: float) -> Bottleneck:
    """A variable-rate bottleneck started from a trained single-rate one: its encoder, decoder and density
    (copied into every rate), gains 1 at the rate nearest ``own_kb`` and scaled by the byte ratio elsewhere
    (rounding finer or coarser; training then moves them)."""
    if single.config.rates != 1 or single.config.codec != "entropy":
        raise ValueError(f"--rate-targets starts from a single-rate entropy checkpoint, got {single.config}")
    base = min(range(len(targets)), key=lambda r: abs(math.log(targets[r] / own_kb)))
    config = dataclasses.replace(single.config, rates=len(targets), default_rate=base)
    bottleneck = Bottleneck(config, teacher.trunk, teacher.trunk_channels())
    own = {k: v for k, v in single.state_dict().items() if not k.startswith("prior.")}
    missing, unexpected = bottleneck.load_state_dict(own, strict=False)
    assert not unexpected and all(k.startswith(("priors.", "log_")) for k in missing), (missing, unexpected)
    with torch.no_grad():
        for r, density in enumerate(bottleneck.priors):
            density.load_state_dict(single.prior.state_dict())
            scale = math.log(targets[r] / targets[base]) * 0.8  # a rough rate ∝ gain^1.25 to start from
            bottleneck.log_gain[r].fill_(scale)
            bottleneck.log_inverse_gain[r].fill_(-scale)
    return bottleneck


def share(text: str) -> float:
    value = number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"needs a share between 0 and 1, got {text!r}")
    return value


SHAPE_OPTIONS = ("tap", "restore", "channels", "width", "stride", "codec")  # taken from --init when given


REPORTING = ("json",)  # options that change what is printed, not what is trained


def command_line(args: argparse.Namespace) -> str:
    """The ``splitinf train`` command that reproduces this run (every option that matters spelled out)."""
    options = []
    for key, value in vars(args).items():
        if key in REPORTING:
            continue
        if value is None or value is False or (args.init and key in SHAPE_OPTIONS):
            continue
        flag = f"--{key.replace('_', '-')}"
        if value is True:  # a switch (store_true): the flag alone
            options.append(flag)
        else:
            options += [flag, ",".join(str(v) for v in value) if isinstance(value, list) else str(value)]
    return "splitinf train " + shlex.join(options)


def freeze_batch_norm(module: nn.Module) -> None:
    """Keep copied teacher blocks on the teacher's BatchNorm statistics (small batches would spoil them)."""
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d):
            child.eval()


@dataclass
class Targets:
    """One batch: the features at the tap (student input), the teacher's output of block ``restore`` and the
    teacher's feature maps (distillation targets)."""

    tap: Tensor
    middle: Tensor
    maps: list[Tensor]


class TeacherBatches:
    """Random crops (and mosaics) of the training images through the frozen teacher, online or from a cache."""

    def __init__(self, teacher, config: BottleneckConfig, sources: list, rng: np.random.Generator,
                 device: torch.device, mosaic: float = 0.0) -> None:
        self.teacher, self.sources, self.rng, self.device, self.mosaic = teacher, sources, rng, device, mosaic
        trunk = teacher.trunk
        self.prefix = trunk[: config.tap + 1]
        self.middle = trunk[config.tap + 1 : config.restore + 1]
        self.rest = trunk[config.restore + 1 :]
        self.cache: list[Tensor] | None = None
        # every photo decoded once (~1.6 GB for the 2,840 VOC photos): decoding one takes 1.9 ms here, a crop
        # of it 0.8–1.6 ms, so a mosaic of four costs a third — the CPU's crops are what bound a GPU's cache fill
        self.decoded: dict[int, np.ndarray] = {}

    @torch.no_grad()
    def compute(self, count: int) -> Targets:
        picks = self.rng.integers(0, len(self.sources), count)
        x, _ = self.teacher.preprocess([self.picture(i) for i in picks])
        tap = self.prefix(x.to(self.device))
        middle = self.middle(tap)
        return Targets(tap, middle, self.teacher.neck(self.rest(middle)))

    def picture(self, pick: int) -> Tensor:
        """One crop of source ``pick``, or (a ``mosaic`` share of the time) a mosaic starting with it."""
        size = self.teacher.input_size
        # no draw at all without mosaics: the random stream, so the crops, of older commands stay the same
        if self.mosaic and self.rng.random() < self.mosaic:
            others = self.rng.integers(0, len(self.sources), 3)
            return random_mosaic([self.rgb(i) for i in (pick, *others)], size, self.rng)
        return random_crop(self.rgb(pick), size, self.rng)

    def rgb(self, pick: int) -> np.ndarray:
        if pick not in self.decoded:
            self.decoded[pick] = load_rgb(self.sources[pick])
        return self.decoded[pick]

    def fill_cache(self, size: int, chunk: int = 16) -> None:
        """Precompute ``size`` crops once (float16 in memory) so that training steps run the student only."""
        parts: list[Targets] = []
        for start in tqdm(range(0, size, chunk), desc="teacher cache", unit="batch"):
            # halved chunk by chunk: holding every chunk in float32 until the end took 3× the cache's
            # memory at its peak (four runs of 14,000 crops ran a GPU's 80 GB out of memory)
            got = self.compute(min(chunk, size - start))
            parts.append(Targets(got.tap.half(), got.middle.half(), [m.half() for m in got.maps]))
        self.cache = [torch.cat([p.tap for p in parts]), torch.cat([p.middle for p in parts]),
                      *[torch.cat([p.maps[i] for p in parts]) for i in range(len(parts[0].maps))]]

    def batch(self, count: int) -> Targets:
        if self.cache is None:
            return self.compute(count)
        index = torch.from_numpy(self.rng.integers(0, len(self.cache[0]), count))
        tap, middle, *maps = (t[index].float() for t in self.cache)
        return Targets(tap, middle, maps)


class RateController:
    """Dual ascent on log β: raise β while the rate is above the target, lower it while below.

    With a fixed β the rate a run ends at is only known afterwards (here it barely moved between β = 0.005
    and 0.03), so a byte budget meant trial runs of an hour each. Steering β makes the budget an input.
    For the first ``hold`` share of the run β stays put: the rate then falls on its own while the entropy
    model learns the latent's density (7 → 2.4 KB/frame over a run at fixed β), and steering on it flung β
    to its bound. After that each step moves log β by ``gain`` × log(rate / target), clipped to ±``gain``:
    a rate 10 % too high raises β by 0.1 % per step at the default gain, slow enough to average out the
    batch-to-batch noise of the rate and to let the encoder follow.
    """

    def __init__(self, beta: float, target_kb: float | None, hold: float = 0.0, gain: float = 0.01,
                 bounds: tuple[float, float] = (1e-5, 100.0)) -> None:
        self.beta, self.target_kb, self.hold, self.gain, self.bounds = beta, target_kb, hold, gain, bounds

    def update(self, kilobytes: float, progress: float = 1.0) -> float:
        """Take this step's rate (KB/frame) and the share of the run done; return β for the next step."""
        if self.target_kb is not None and progress > self.hold:
            step = self.gain * min(max(math.log(max(kilobytes, 1e-9) / self.target_kb), -1.0), 1.0)
            self.beta = min(max(self.beta * math.exp(step), self.bounds[0]), self.bounds[1])
        return self.beta


class Schedule:
    """How far a run is (0 → 1) by steps or, with a time budget, by wall time, whichever is further; and the
    learning-rate factor there: linear warm-up over the first 5 % (or ``steps // 20`` steps, whichever ends
    first), then cosine decay to zero at the end."""

    def __init__(self, steps: int, seconds: float | None = None) -> None:
        self.steps, self.seconds, self.start = steps, seconds, time.monotonic()
        self.warmup = max(steps // 20, 1)

    def progress(self, step: int) -> float:
        done = step / self.steps
        if self.seconds is not None:
            done = max(done, (time.monotonic() - self.start) / self.seconds)
        return min(done, 1.0)

    def lr_scale(self, step: int, progress: float) -> float:
        return min(max(step / self.warmup, progress / 0.05), 0.5 * (1 + math.cos(math.pi * progress)))


def build_optimizer(bottleneck: Bottleneck, lr: float) -> torch.optim.Optimizer:
    """New layers (encoder, decoder stem, entropy model) at ``lr``; the copied teacher blocks gentler; a
    variable-rate bottleneck's gain vectors 10× faster, without weight decay (in a fine-tune of a few thousand
    steps at ``lr`` they moved the rates apart by a third of what their targets asked)."""
    stem_layers = 3
    copied = [p for n, p in bottleneck.named_parameters()
              if n.startswith("decoder.") and int(n.split(".")[1]) >= stem_layers]
    gains = [p for n, p in bottleneck.named_parameters() if n.startswith("log_") and p.requires_grad]
    special = {id(p) for p in copied + gains}
    new = [p for p in bottleneck.parameters() if id(p) not in special]
    groups = [{"params": new, "lr": lr}, {"params": copied, "lr": lr * 0.2}]
    if gains:
        groups.append({"params": gains, "lr": lr * 10, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, weight_decay=1e-5)


def main(args: argparse.Namespace) -> int:
    started = time.time()
    device = torch.device("cuda" if args.torch_device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.torch_device == "auto" else args.torch_device))
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    spec = detector_spec(args.model)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
    teacher = build_detector(args.model, weights=args.weights or spec.default_weights)
    for p in teacher.parameters():
        p.requires_grad_(False)
    # built on the CPU (where the teacher's probe of its trunk runs), then moved together
    if args.init:
        init = find_checkpoint(args.init)
        bottleneck, init_metadata = load_for(init, teacher), read_checkpoint(init)["metadata"]
        if args.rate_targets and bottleneck.config.rates == 1:
            own_kb = init_metadata.get("target_kb") or float(np.median(args.rate_targets))
            bottleneck = variable_rate(bottleneck, teacher, args.rate_targets, own_kb)
        elif args.rate_targets and len(args.rate_targets) != bottleneck.config.rates:
            raise ValueError(f"--rate-targets gives {len(args.rate_targets)} rates, {args.init} has "
                             f"{bottleneck.config.rates}")
        config = bottleneck.config
    elif args.rate_targets:
        raise ValueError("--rate-targets fine-tunes a trained checkpoint: give it with --init")
    else:
        config = BottleneckConfig(args.model, args.tap, args.restore, args.channels, args.width, args.stride,
                                  args.codec)
        bottleneck = Bottleneck(config, teacher.trunk, teacher.trunk_channels())
    teacher, bottleneck = teacher.to(device), bottleneck.to(device)
    bottleneck.requires_grad_(True)  # the copied teacher blocks arrive frozen with the teacher
    if args.freeze_gains and config.rates > 1:
        bottleneck.log_gain.requires_grad_(False)
        bottleneck.log_inverse_gain.requires_grad_(False)
    if args.loss == "detect":  # fail now, not after minutes of filling the cache
        with torch.no_grad():
            teacher.anchor_outputs(teacher.neck(teacher.trunk(torch.zeros(1, 3, *teacher.input_size, device=device))))
    copied = bottleneck.decoder[3:]
    optimizer = build_optimizer(bottleneck, args.lr)
    if config.rates > 1 and args.freeze_gains:  # the gains set the rates; one β weighs bytes for them all
        rates = [RateController(args.beta, None) for _ in range(config.rates)]
    elif config.rates > 1 and args.rate_targets:  # a controller per rate, β started nearer that rate's bytes
        base = args.rate_targets[config.default_rate]
        started_from = init_metadata.get("beta_by_rate") or \
            [args.beta * (base / kb) ** 2 for kb in args.rate_targets]
        # each rate's β moves every len(targets) steps: a larger gain keeps its pace that of a single rate's
        rates = [RateController(beta, kb, hold=0.1, gain=0.01 * len(args.rate_targets))
                 for beta, kb in zip(started_from, args.rate_targets)]
    else:  # (a variable-rate checkpoint fine-tuned further without targets: one fixed β for every rate)
        rates = [RateController(args.beta, args.target_kb, hold=0.25) for _ in range(config.rates)]
    rate = rates[0]
    kb_by_rate: list[list[float]] = [[] for _ in rates]
    peaks = [g["lr"] for g in optimizer.param_groups]
    sources = voc_photos() + video_sources(step=args.video_step)
    batches = TeacherBatches(teacher, config, sources, rng, device, args.mosaic)
    print(f"training a {config} bottleneck on {len(sources)} images ({device}), {args.steps} steps of "
          f"{args.batch}" + (f" from {args.cache} cached crops" if args.cache else "")
          + (f", {args.mosaic:.0%} of them mosaics" if args.mosaic else ""), file=sys.stderr)
    if args.cache:
        batches.fill_cache(args.cache)
    log_path = Path(args.log or str(args.out) + ".log.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = max((args.cache or len(sources)) // args.batch, 1)
    window: list[tuple[float, float, list[float]]] = []
    budget = None if args.max_minutes is None else args.max_minutes * 60 - (time.time() - started)
    if budget is not None and budget <= 0:
        raise ValueError(f"--max-minutes {args.max_minutes} ran out before training began (the teacher cache "
                         f"took {time.time() - started:.0f} s)")
    schedule = Schedule(args.steps, budget)
    with open(log_path, "w") as log:
        progress = tqdm(range(1, args.steps + 1), desc="train", unit="step")
        step = 0  # what the metadata records if --steps 0 trains nothing
        for step in progress:
            done = schedule.progress(step)
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * schedule.lr_scale(step, done)
            targets = batches.batch(args.batch)
            bottleneck.train()
            freeze_batch_norm(copied)
            r = step % len(rates)  # variable rate: the rates take turns, one per step
            rate = rates[r]
            rebuilt, bits = bottleneck(targets.tap, rate=r)
            if args.loss in ("ghnd", "detect"):
                student_maps = teacher.neck(batches.rest(rebuilt))
                distill = ghnd_loss(student_maps, targets.maps)
                errors = per_map_errors(student_maps, targets.maps)
                if args.loss == "detect":
                    with torch.no_grad():
                        wanted = teacher.anchor_outputs(targets.maps)
                    classes, boxes = output_distillation_loss(teacher.anchor_outputs(student_maps), wanted)
                    distill = distill + classes + boxes
            else:
                distill, errors = hnd_loss(rebuilt, targets.middle), []
            kilobytes = bits / args.batch / 8 / 1024
            optimizer.zero_grad(set_to_none=True)
            (distill + rate.beta * kilobytes).backward()
            optimizer.step()
            rate.update(kilobytes.item(), done)
            kb_by_rate[r].append(kilobytes.item())
            window.append((distill.item(), kilobytes.item(), errors))
            progress.set_postfix(distill=f"{window[-1][0]:.4f}", KB=f"{window[-1][1]:.2f}")
            if step % steps_per_epoch == 0 or done >= 1:
                record = epoch_record(step, steps_per_epoch, window, optimizer, started) | {"beta": rate.beta}
                if len(rates) > 1:
                    record |= {"kb_by_rate": [round(float(np.mean(k)), 3) if k else None for k in kb_by_rate],
                               "beta_by_rate": [c.beta for c in rates]}
                    kb_by_rate = [[] for _ in rates]
                log.write(json.dumps(record) + "\n")
                log.flush()
                tqdm.write(f"epoch {record['epoch']:.2f}: distill {record['distill']:.4f}, "
                           f"{record['kb_per_frame']:.2f} KB/frame (β {rate.beta:.3g}), "
                           f"map errors {record['map_errors']}")
                window.clear()
            if done >= 1:
                break
    progress.close()
    bottleneck.eval().cpu()
    if config.codec == "entropy":
        bottleneck.update_tables()
    wall = time.time() - started
    bottleneck.save(args.out, metadata={
        "command": command_line(args), "wall_time_s": round(wall, 1), "device": str(device),
        "torch": str(torch.__version__), "teacher": args.model, "teacher_weights": args.weights or spec.default_weights,
        "images": len(sources), "steps": step, "batch": args.batch, "beta": rate.beta,
        "target_kb": args.target_kb, "loss": args.loss,
        "init": args.init, "rate_targets_kb": args.rate_targets, "beta_by_rate": [c.beta for c in rates],
    })
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KB) after {wall / 60:.1f} min; "
          f"fingerprint {bottleneck.fingerprint()}", file=sys.stderr)
    if args.json:
        print_json_line({"checkpoint": str(args.out), "fingerprint": bottleneck.fingerprint(), "steps": step,
                         "wall_time_s": round(wall, 1), "beta": rate.beta, "torch_device": str(device)})
    return 0


def epoch_record(step: int, steps_per_epoch: int, window: list, optimizer, started: float) -> dict:
    distills, kbs, errs = zip(*window)
    return {"step": step, "epoch": round(step / steps_per_epoch, 3), "distill": float(np.mean(distills)),
            "kb_per_frame": float(np.mean(kbs)), "lr": optimizer.param_groups[0]["lr"],
            "map_errors": np.mean(errs, axis=0).round(5).tolist() if errs[0] else [],
            "elapsed_s": round(time.time() - started, 1)}
