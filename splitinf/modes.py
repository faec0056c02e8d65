"""The registry of modes, for both sides: what a frame can become on the device and on the wire.

* ``local``: the device runs the whole detector; nothing is sent.
* ``jpeg``: the device sends the frame as a JPEG; the edge decodes it and runs the whole detector.
* ``split``: the device runs the head (and the bottleneck's encoder) and sends its coded features; the edge
  runs the rest.
* ``auto``: not a mode of its own: the device chooses one of the others per frame.

A variable-rate bottleneck makes each of its rates an operating point of its own, ``split@R``: on the wire it
is ``split`` (the rate travels in the bitstream); on the device and in the policy it is a mode of its own.

Each mode's device half is written once in :mod:`splitinf.head.modes`, its edge half once in
:mod:`splitinf.tail.modes`; everything that runs or measures a mode (the device, the edge, the evaluation,
the cost measurement, the load generator) calls those.
"""

LOCAL, JPEG, SPLIT, AUTO = "local", "jpeg", "split", "auto"
MODES = (SPLIT, JPEG, LOCAL)  # what a device can do with a frame
OFFLOAD_MODES = (SPLIT, JPEG)  # what crosses the wire (a FRAME's mode)
DEVICE_MODES = (*MODES, AUTO)  # what splitinf-device --mode takes
AUTO_MODES = (LOCAL, JPEG, SPLIT)  # what --mode auto chooses from, by default


def base_mode(name: str) -> str:
    """``split@2`` → ``split``; any other mode name as it is."""
    return name.partition("@")[0]


def rate_of(name: str) -> int | None:
    """The rate of a ``split@R`` operating point (None for a mode without one)."""
    _, at, rate = name.partition("@")
    return int(rate) if at else None


def check_device_modes(mode: str, auto_modes: tuple[str, ...], connect: str | None, slowdown: float) -> None:
    """A device's mode, what ``--mode auto`` may choose from (local, its fallback, and any offload mode), and
    that an offloading mode has an edge to offload to; one clear error each."""
    if mode not in DEVICE_MODES:
        raise ValueError(f"mode must be one of {DEVICE_MODES}, got {mode!r}")
    if mode != LOCAL and not connect:
        raise ValueError(f"mode {mode!r} needs --connect tcp://HOST:PORT of an edge (or a relay)")
    if slowdown < 1:
        raise ValueError(f"slowdown emulates a slower board and must be >= 1, got {slowdown}")
    if mode == AUTO and (LOCAL not in auto_modes or not {base_mode(m) for m in auto_modes} <= set(AUTO_MODES)):
        raise ValueError(f"auto modes must include local and be among {AUTO_MODES}, got {','.join(auto_modes)}")
