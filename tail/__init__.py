"""Edge-side model: the layers after the split, the detection heads and the postprocess."""

from splitinf.tail.split_tail import Tail

__all__ = ["Tail"]
