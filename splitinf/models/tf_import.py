"""TF1 Object Detection API ``ssdlite_mobilenet_v2`` constants → a state dict of :class:`SSDLiteMobileNetV2`.

Layouts: conv ``weights`` HWIO → OIHW; ``depthwise_weights`` (H, W, C, 1) → (C, 1, H, W); BatchNorm
gamma/beta/moving_mean/moving_variance → weight/bias/running_mean/running_var (PRETRAINED.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from splitinf.models.ssdlite_mobilenet_v2 import EXTRA_DEPTHS

BACKBONE = "FeatureExtractor/MobilenetV2"


class _Converter:
    def __init__(self, constants: dict[str, np.ndarray]) -> None:
        self.constants = constants
        self.used: set[str] = set()
        self.state: dict[str, Tensor] = {}

    def take(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise KeyError(f"the TF graph has no constant {name!r}")
        self.used.add(name)
        return self.constants[name]

    def conv(self, scope: str, key: str, bias: bool = False) -> None:
        self.state[f"{key}.weight"] = torch.from_numpy(self.take(f"{scope}/weights").transpose(3, 2, 0, 1).copy())
        if bias:
            self.state[f"{key}.bias"] = torch.from_numpy(self.take(f"{scope}/biases").copy())

    def depthwise(self, scope: str, key: str) -> None:
        weights = self.take(f"{scope}/depthwise_weights").transpose(2, 3, 0, 1)
        self.state[f"{key}.weight"] = torch.from_numpy(weights.copy())

    def batch_norm(self, scope: str, key: str) -> None:
        for tf_name, torch_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                    ("moving_variance", "running_var")):
            self.state[f"{key}.{torch_name}"] = torch.from_numpy(self.take(f"{scope}/BatchNorm/{tf_name}").copy())
        self.state[f"{key}.num_batches_tracked"] = torch.tensor(0)


def convert_ssdlite_mobilenet_v2(constants: dict[str, np.ndarray], num_heads: int = 6) -> dict[str, Tensor]:
    """Map the graph's constants onto our module names; every weight-sized constant must be used."""
    c = _Converter(constants)
    c.conv(f"{BACKBONE}/Conv", "features.0.0")
    c.batch_norm(f"{BACKBONE}/Conv", "features.0.1")
    c.depthwise(f"{BACKBONE}/expanded_conv/depthwise", "features.1.conv.0.0")
    c.batch_norm(f"{BACKBONE}/expanded_conv/depthwise", "features.1.conv.0.1")
    c.conv(f"{BACKBONE}/expanded_conv/project", "features.1.conv.1")
    c.batch_norm(f"{BACKBONE}/expanded_conv/project", "features.1.conv.2")
    for i in range(1, 17):
        scope, key = f"{BACKBONE}/expanded_conv_{i}", f"features.{i + 1}.conv"
        c.conv(f"{scope}/expand", f"{key}.0.0")
        c.batch_norm(f"{scope}/expand", f"{key}.0.1")
        c.depthwise(f"{scope}/depthwise", f"{key}.1.0")
        c.batch_norm(f"{scope}/depthwise", f"{key}.1.1")
        c.conv(f"{scope}/project", f"{key}.2")
        c.batch_norm(f"{scope}/project", f"{key}.3")
    c.conv(f"{BACKBONE}/Conv_1", "features.18.0")
    c.batch_norm(f"{BACKBONE}/Conv_1", "features.18.1")
    for j, (_, mid, out) in enumerate(EXTRA_DEPTHS):
        k = j + 2
        reduce = f"{BACKBONE}/layer_19_1_Conv2d_{k}_1x1_{mid}"
        depthwise = f"{BACKBONE}/layer_19_2_Conv2d_{k}_3x3_s2_{out}_depthwise"
        project = f"{BACKBONE}/layer_19_2_Conv2d_{k}_3x3_s2_{out}"
        c.conv(reduce, f"extras.{j}.0.0")
        c.batch_norm(reduce, f"extras.{j}.0.1")
        c.depthwise(depthwise, f"extras.{j}.1.0")
        c.batch_norm(depthwise, f"extras.{j}.1.1")
        c.conv(project, f"extras.{j}.2.0")
        c.batch_norm(project, f"extras.{j}.2.1")
    for i in range(num_heads):
        for tf_name, head in (("BoxEncodingPredictor", "regression_head"), ("ClassPredictor", "classification_head")):
            key = f"head.{head}.module_list.{i}"
            c.depthwise(f"BoxPredictor_{i}/{tf_name}_depthwise", f"{key}.0.0")
            c.batch_norm(f"BoxPredictor_{i}/{tf_name}_depthwise", f"{key}.0.1")
            c.conv(f"BoxPredictor_{i}/{tf_name}", f"{key}.1", bias=True)
    unused = sorted(name for name, value in constants.items()
                    if name not in c.used and value.size > 16 and name.endswith(("weights", "gamma", "beta")))
    if unused:
        raise ValueError(f"{len(unused)} weight constants of the TF graph were not mapped, e.g. {unused[:3]}")
    return c.state


def num_classes_of(state: dict[str, Tensor]) -> int:
    """Classes (background included) of a converted state dict: class outputs of the first head / 3 anchors."""
    return int(state["head.classification_head.module_list.0.1.weight"].shape[0]) // 3
