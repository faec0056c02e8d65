"""MobileDets (Xiong et al., CVPR 2021) with SSDLite, as the TF Object Detection API's
``ssd_mobiledet_feature_extractor.py`` defines them: CPU (IBN blocks with squeeze-excite and swish6 =
hard-swish), DSP and EdgeTPU (IBN, fused and Tucker blocks with ReLU6).

Backbone BatchNorm: eps 0.01, TF decay 0.99 (PyTorch momentum 0.01); channels rounded half-up to multiples
of 8; TF "SAME" padding. The SSDLite feature maps are the C4 and C5 endpoints plus extra layers of depth
512, 256, 256, 128 (20, 10, 5, 3, 2, 1 at 320×320). No pretrained MobileDet weights exist offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

from splitinf.models.base import SplitPoint
from splitinf.models.tf_compat import use_tf_same_padding
from splitinf.models.tf_ssdlite import TFSSDLite, extra_block

BACKBONE_NORM = partial(nn.BatchNorm2d, eps=0.01, momentum=0.01)
INPUT_SIZE = (320, 320)
EXTRA_DEPTHS = (512, 256, 256, 128)


def scale_filters(filters: int, multiplier: float = 1.0, base: int = 8) -> int:
    """TF ``_scale_filters``: round half up to a multiple of ``base``, at least ``base``."""
    return max(int(int(filters * multiplier / base + 0.5) * base), base)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None
            ) -> nn.Sequential:
    """slim.conv2d(normalizer=batch_norm): conv without bias, BatchNorm, then the activation (if any)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               BACKBONE_NORM(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Global average → 1×1 (bias, activation) → 1×1 (bias, sigmoid) → scale; no BatchNorm (as in TF)."""

    def __init__(self, channels: int, hidden: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = act()
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean((2, 3), keepdim=True)
        return x * self.expand(self.act(self.reduce(u))).sigmoid()


class Block(nn.Module):
    """One backbone block; ``residual`` adds the input back (TF's ``residual=True``)."""

    def __init__(self, layers: list[nn.Module], residual: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


@dataclass(frozen=True)
class Spec:
    kind: str  # "ibn", "ibn_noexp", "fused", "tucker"
    filters: int
    expansion: int = 8
    kernel: int = 3
    stride: int = 1
    residual: bool = True
    se: bool = False
    ranks: tuple[float, float] = (0.25, 0.25)  # Tucker input/output rank ratios


def make_block(cin: int, spec: Spec, act: type[nn.Module], multiplier: float) -> tuple[Block, int]:
    cout = scale_filters(spec.filters, multiplier)
    layers: list[nn.Module] = []
    if spec.kind == "ibn_noexp":
        layers.append(conv_bn(cin, cin, spec.kernel, spec.stride, groups=cin, act=act))
        if spec.se:
            layers.append(SqueezeExcite(cin, scale_filters(cin, 0.25), act))
        layers.append(conv_bn(cin, cout, 1))
        return Block(layers, False), cout
    if spec.kind == "ibn":
        expanded = cin * spec.expansion
        layers += [conv_bn(cin, expanded, 1, act=act),
                   conv_bn(expanded, expanded, spec.kernel, spec.stride, groups=expanded, act=act)]
    elif spec.kind == "fused":
        expanded = cin * spec.expansion
        layers.append(conv_bn(cin, expanded, spec.kernel, spec.stride, act=act))
    elif spec.kind == "tucker":
        in_rank, out_rank = scale_filters(cin, spec.ranks[0]), scale_filters(spec.filters, spec.ranks[1])
        layers += [conv_bn(cin, in_rank, 1, act=act), conv_bn(in_rank, out_rank, spec.kernel, spec.stride, act=act),
                   conv_bn(out_rank, cout, 1)]
        return Block(layers, spec.residual), cout
    else:
        raise ValueError(f"unknown MobileDet block kind {spec.kind!r}")
    if spec.se:
        layers.append(SqueezeExcite(expanded, scale_filters(expanded, 0.25), act))
    layers.append(conv_bn(expanded, cout, 1))
    return Block(layers, spec.residual), cout


# Each backbone: (stem filters, activation, specs up to C4, specs of C5). C4 and C5 are the endpoints.
ibn_se = partial(Spec, "ibn", se=True)
CPU = (16, nn.Hardswish, [
    Spec("ibn_noexp", 8, se=True),                                            # C1
    ibn_se(16, expansion=4, stride=2, residual=False),                         # C2
    ibn_se(32, expansion=8, stride=2, residual=False), ibn_se(32, expansion=4), ibn_se(32, expansion=4),
    ibn_se(32, expansion=4),                                                   # C3
    ibn_se(72, kernel=5, expansion=8, stride=2, residual=False), ibn_se(72, expansion=8),
    ibn_se(72, kernel=5, expansion=4), ibn_se(72, expansion=4), ibn_se(72, expansion=8, residual=False),
    ibn_se(72, expansion=8), ibn_se(72, expansion=8), ibn_se(72, expansion=8),  # C4
], [
    ibn_se(104, kernel=5, expansion=8, stride=2, residual=False), ibn_se(104, kernel=5, expansion=4),
    ibn_se(104, kernel=5, expansion=4), ibn_se(104, expansion=4), ibn_se(144, expansion=8, residual=False),  # C5
])
DSP = (32, nn.ReLU6, [
    Spec("ibn_noexp", 24),                                                     # C1
    Spec("fused", 32, 4, stride=2, residual=False), Spec("fused", 32, 4), Spec("ibn", 32, 4),
    Spec("tucker", 32, ranks=(0.25, 0.75)),                                    # C2
    Spec("fused", 64, 8, stride=2, residual=False), Spec("ibn", 64, 4), Spec("fused", 64, 4),
    Spec("fused", 64, 4),                                                      # C3
    Spec("fused", 120, 8, stride=2, residual=False), Spec("ibn", 120, 4), Spec("ibn", 120, 8), Spec("ibn", 120, 8),
    Spec("fused", 144, 8, residual=False), Spec("ibn", 144, 8), Spec("ibn", 144, 8), Spec("ibn", 144, 8),  # C4
], [
    Spec("ibn", 160, 4, stride=2, residual=False), Spec("ibn", 160, 4), Spec("fused", 160, 4),
    Spec("tucker", 160, ranks=(0.75, 0.75)), Spec("ibn", 240, 8, residual=False),  # C5
])
EDGETPU = (32, nn.ReLU6, [
    Spec("tucker", 16, ranks=(0.25, 0.75), residual=False),                    # C1
    Spec("fused", 16, 8, stride=2, residual=False), Spec("fused", 16, 4), Spec("fused", 16, 8),
    Spec("fused", 16, 4),                                                      # C2
    Spec("fused", 40, 8, kernel=5, stride=2, residual=False), Spec("fused", 40, 4), Spec("fused", 40, 4),
    Spec("fused", 40, 4),                                                      # C3
    Spec("ibn", 72, 8, stride=2, residual=False), Spec("ibn", 72, 8), Spec("fused", 72, 4), Spec("fused", 72, 4),
    Spec("ibn", 96, 8, kernel=5, residual=False), Spec("ibn", 96, 8, kernel=5), Spec("ibn", 96, 8),
    Spec("ibn", 96, 8),                                                        # C4
], [
    Spec("ibn", 120, 8, kernel=5, stride=2, residual=False), Spec("ibn", 120, 8), Spec("ibn", 120, 4, kernel=5),
    Spec("ibn", 120, 8), Spec("ibn", 384, 8, kernel=5, residual=False),       # C5
])
BACKBONES = {"cpu": CPU, "dsp": DSP, "edgetpu": EDGETPU}


class SSDLiteMobileDet(TFSSDLite):
    """SSDLite + MobileDet-{CPU, DSP, EdgeTPU} at 320×320."""

    def __init__(self, *, variant: str, num_classes: int, multiplier: float = 1.0, **postprocess) -> None:
        if variant not in BACKBONES:
            raise ValueError(f"unknown MobileDet variant {variant!r}; known: {sorted(BACKBONES)}")
        stem_filters, act, c4_specs, c5_specs = BACKBONES[variant]
        channels = scale_filters(stem_filters, multiplier)
        blocks: list[nn.Module] = [conv_bn(3, channels, 3, stride=2, act=act)]
        strides, stride = [2], 2
        for spec in c4_specs:
            block, channels = make_block(channels, spec, act, multiplier)
            blocks.append(block)
            stride *= spec.stride
            strides.append(stride)
        c4_channels = channels
        c5: list[nn.Module] = []
        for spec in c5_specs:
            block, channels = make_block(channels, spec, act, multiplier)
            c5.append(block)
        super().__init__(name=f"ssdlite_mobiledet_{variant}", num_classes=num_classes, input_size=INPUT_SIZE,
                         feature_channels=(c4_channels, channels, *EXTRA_DEPTHS), **postprocess)
        self.backbone = use_tf_same_padding(nn.Sequential(*blocks))
        self.c5 = use_tf_same_padding(nn.Sequential(*c5))
        depths = (channels, *EXTRA_DEPTHS)
        self.extras = use_tf_same_padding(nn.ModuleList(extra_block(i, o) for i, o in zip(depths, depths[1:])))
        self.split_points = tuple(
            SplitPoint(f"s{s}", max(i for i, t in enumerate(strides) if t == s), s,
                       f"after the last stride-{s} MobileDet-{variant.upper()} block before C4's end")
            for s in (4, 8))
        # s16: after the first C4 block that is not residual past its first (the "no-residual" IBN/fused)
        first_s16 = strides.index(16)
        self.split_points += (SplitPoint("s16", first_s16 + 1, 16,
                                         f"after MobileDet-{variant.upper()} block {first_s16 + 1} (stride 16)"),)

    @property
    def trunk(self) -> nn.Sequential:
        return self.backbone

    def neck(self, x: Tensor) -> list[Tensor]:
        maps = [x, self.c5(x)]  # C4, C5
        y = maps[-1]
        for block in self.extras:
            y = block(y)
            maps.append(y)
        return maps
