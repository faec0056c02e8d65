"""SSDLite + MobileNetV2 (1.0) at 300×300, compatible with the TF1 Object Detection API's
``ssdlite_mobilenet_v2`` graphs — the SSDLite of the MobileNetV2 paper.

Module names follow torchvision (``features`` is ``mobilenet_v2().features``, ``head`` is
``SSDLiteHead``) so that converted TF weights load with ``strict=True``; see PRETRAINED.md for every fact
this rebuild depends on.
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn
from torchvision.models import mobilenet_v2

from splitinf.models.base import SplitPoint
from splitinf.models.tf_compat import use_tf_same_padding
from splitinf.models.tf_ssdlite import TFSSDLite, extra_block

BN_EPS = 1e-3
INPUT_SIZE = (300, 300)
FEATURE_CHANNELS = (576, 1280, 512, 256, 256, 128)
EXTRA_DEPTHS = ((1280, 256, 512), (512, 128, 256), (256, 128, 256), (256, 64, 128))  # (in, mid, out)

# MobileNetV2 `features`: [3] last stride-4 block (24 ch), [6] last stride-8 block (32 ch),
# [13] last block before feature map 0 (96 ch, stride 16).
MOBILENET_V2_SPLITS = (
    SplitPoint("s4", 3, 4, "after MobileNetV2 features[3] (24 ch, stride 4)"),
    SplitPoint("s8", 6, 8, "after MobileNetV2 features[6] (32 ch, stride 8)"),
    SplitPoint("s16", 13, 16, "after MobileNetV2 features[13] (96 ch, stride 16)"),
)


class SSDLiteMobileNetV2(TFSSDLite):
    """TF-compatible SSDLite-MobileNetV2; ``num_classes`` counts the background (person-only = 2)."""

    def __init__(self, *, num_classes: int, name: str = "ssdlite_mobilenet_v2", **postprocess) -> None:
        super().__init__(name=name, num_classes=num_classes, input_size=INPUT_SIZE,
                         feature_channels=FEATURE_CHANNELS, **postprocess)
        self.split_points = MOBILENET_V2_SPLITS
        norm = partial(nn.BatchNorm2d, eps=BN_EPS)
        self.features = use_tf_same_padding(mobilenet_v2(weights=None, norm_layer=norm).features)
        self.extras = use_tf_same_padding(nn.ModuleList([extra_block(i, o, norm) for i, _, o in EXTRA_DEPTHS]))

    @property
    def trunk(self) -> nn.Sequential:
        return nn.Sequential(*self.features[:14])

    def neck(self, x: Tensor) -> list[Tensor]:
        expand = self.features[14].conv[0]  # TF expanded_conv_13/expand: feature map 0
        fm0 = expand(x)
        x = self.features[14].conv[1:](fm0)  # stride 2: no residual
        fm1 = self.features[15:](x)
        maps = [fm0, fm1]
        x = fm1
        for block in self.extras:
            x = block(x)
            maps.append(x)
        return maps
