"""What device and edge must agree on: the model, its weights, the split (or bottleneck) and the codec.

Both sides build the same :class:`ModelSetup` from the same defaults, so ``splitinf-edge --bind ADDR`` and
``splitinf-device --connect ADDR --source FILE`` work together with no other flag. The *fingerprint* hashes
the configuration and every weight; the edge refuses a device whose fingerprint differs and says which
configuration field differs.

The options are read without torch (a board's ``splitinf-device --engine onnx`` parses them too); torch is
loaded when a setup is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from splitinf.weights.checkpoints import DEFAULT_BOTTLENECK, default_bottleneck, find_checkpoint, update_digest

if TYPE_CHECKING:
    from splitinf.bottleneck import Bottleneck, Codec
    from splitinf.models import SplittableDetector

DEFAULT_MODEL = "ssdlite_mobilenet_v2_person"
DEFAULT_SPLIT = "s16"
PLAIN_CODECS = ("float32", "minmax8")  # payload codecs without a bottleneck (splitinf.bottleneck.codec)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both ``splitinf-edge`` and ``splitinf-device`` take, with the same defaults."""
    group = parser.add_argument_group("model (device and edge must match)")
    group.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo detector (default {DEFAULT_MODEL})")
    group.add_argument("--weights", default=None, help="weights: pretrained, DEFAULT or a file "
                       "(default: the model's own pretrained weights, else random init)")
    group.add_argument("--bottleneck", default="default",
                       help=f"trained bottleneck: a file, a name in $SPLITINF_HOME/checkpoints or the package, "
                            f"'default' (the shipped {DEFAULT_BOTTLENECK}) or 'none' (plain --split); default default")
    group.add_argument("--split", default=DEFAULT_SPLIT,
                       help=f"split point when no bottleneck is used (default {DEFAULT_SPLIT})")
    group.add_argument("--codec", default="minmax8", choices=PLAIN_CODECS,
                       help="payload codec when no bottleneck is used (default minmax8; float32 is lossless)")


def thread_count(text: str) -> int:
    """``--threads`` as argparse reads it: a whole number of at least one."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads >= 1, got {text!r}")
    return int(text)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads`` for either side; it need not match, so it lives outside the model group."""
    parser.add_argument("--threads", type=thread_count, default=None, metavar="N",
                        help="CPU threads for the model (default: torch's, one per core). When device and edge "
                             "share a machine, give each a share of its cores: two processes each using every "
                             "core slow both down")


def use_threads(threads: int | None) -> int:
    """Apply ``--threads`` to torch (None: leave torch's default) and return the count in effect."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def bottleneck_for(model: str, choice: str) -> str | None:
    """``--bottleneck`` as a checkpoint file: 'default' is the shipped one for the default model (no bottleneck
    for another model), 'none' none, anything else a file or a checkpoint name."""
    if choice == "none" or (choice == "default" and model != DEFAULT_MODEL):
        return None
    return str(default_bottleneck() if choice == "default" else find_checkpoint(choice))


@dataclass
class ModelSetup:
    detector: SplittableDetector
    split: str | None
    bottleneck: Bottleneck | None
    codec: Codec
    config: dict
    fingerprint: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModelSetup:
        return cls.build(args.model, args.weights, args.split, bottleneck_for(args.model, args.bottleneck), args.codec)

    @classmethod
    def build(cls, model: str, weights: str | None, split: str | None, bottleneck_path: str | None,
              codec: str = "minmax8") -> ModelSetup:
        from splitinf.bottleneck import Float32Codec, MinMax8Codec, load_for
        from splitinf.models import build_detector, detector_spec

        spec = detector_spec(model)
        detector = build_detector(model, weights=weights or spec.default_weights)
        if bottleneck_path is not None:
            bottleneck = load_for(bottleneck_path, detector)
            split, payload_codec = None, bottleneck.codec()
            what = {"bottleneck": Path(bottleneck_path).name, "bottleneck_fingerprint": bottleneck.fingerprint()}
        else:
            detector.split_point(split)  # refuse an unknown split point now
            bottleneck, payload_codec = None, {"float32": Float32Codec, "minmax8": MinMax8Codec}[codec]()
            what = {"split": split}
        digest = hashlib.sha256()
        update_digest(digest, detector.state_dict())
        config = {"model": model, "weights": digest.hexdigest()[:16], "codec": payload_codec.name, **what}
        fingerprint = hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()[:16]
        return cls(detector, split, bottleneck, payload_codec, config, fingerprint)

    def at_rate(self, rate: int | None) -> ModelSetup:
        """This setup compressing at ``rate`` of its variable-rate bottleneck (None: its default rate). The
        fingerprint stays: an edge decodes every rate of the bottleneck it has."""
        if rate is None:
            return self
        rates = self.bottleneck.config.rates if self.bottleneck is not None else 1
        if rates == 1:
            raise ValueError(f"--rate {rate}: {self.config.get('bottleneck') or 'split ' + str(self.split)} has "
                             "one rate only (a variable-rate bottleneck is trained with splitinf train "
                             "--rate-targets)")
        if not 0 <= rate < rates:
            raise ValueError(f"--rate {rate}: the bottleneck {self.config['bottleneck']} has rates 0..{rates - 1}")
        return dataclasses.replace(self, codec=self.codec.at(rate))

    def describe(self) -> str:
        where = f"bottleneck {self.config['bottleneck']}" if self.bottleneck else f"split {self.split}"
        rate = f" at rate {self.codec.rate}" if hasattr(self.codec, "rate") else ""
        return f"{self.config['model']}, {where}, codec {self.codec.name}{rate}, fingerprint {self.fingerprint}"
