"""The registry of modes, for both sides: what a frame can become on the device and on the wire.

* ``local``: the device runs the whole detector; nothing is sent.
* ``jpeg``: the device sends the frame as a JPEG; the edge decodes it and runs the whole detector.
* ``split``: the device runs the head (and the bottleneck's encoder) and sends its coded features; the edge
  runs the rest.
* ``auto``: not a mode of its own: the device chooses one of the others per frame.

Each mode's device half is written once in :mod:`splitinf.head.modes`, its edge half once in
:mod:`splitinf.tail.modes`; everything that runs or measures a mode (the device, the edge, the evaluation,
the cost measurement, the load generator) calls those.
"""

LOCAL, JPEG, SPLIT, AUTO = "local", "jpeg", "split", "auto"
MODES = (SPLIT, JPEG, LOCAL)  # what a device can do with a frame
OFFLOAD_MODES = (SPLIT, JPEG)  # what crosses the wire (a FRAME's mode)
DEVICE_MODES = (*MODES, AUTO)  # what splitinf-device --mode takes
AUTO_MODES = (LOCAL, JPEG, SPLIT)  # what --mode auto chooses from, by default
