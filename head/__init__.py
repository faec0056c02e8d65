"""Device-side model: preprocessing and the head layers up to the split (later: bottleneck encoder, prefilter)."""

from splitinf.head.prefilter import Prefilter, PrefilterConfig, PrefilterError, load_prefilter
from splitinf.head.split_head import Head

__all__ = ["Head", "Prefilter", "PrefilterConfig", "PrefilterError", "load_prefilter"]
