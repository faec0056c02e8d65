"""Mahimahi packet-delivery traces: one integer per line, a millisecond at which one 1504-byte packet may leave.

Validation follows ``mm-link``: no empty lines, integers only, never decreasing, and a nonzero duration
(the trace loops with period = its last timestamp). Every refusal names the file and the line.
"""

from __future__ import annotations

from pathlib import Path


class TraceError(ValueError):
    """A trace file that mm-link would refuse."""


def parse_trace(text: str, name: str = "<trace>") -> list[int]:
    times: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            raise TraceError(f"{name}: line {number}: empty line (expected a millisecond timestamp)")
        try:
            value = int(stripped)
        except ValueError:
            raise TraceError(f"{name}: line {number}: {stripped[:40]!r} is not an integer millisecond") from None
        if value < 0:
            raise TraceError(f"{name}: line {number}: negative timestamp {value}")
        if times and value < times[-1]:
            raise TraceError(f"{name}: line {number}: timestamp {value} is smaller than the previous {times[-1]} "
                             "(timestamps must never decrease)")
        times.append(value)
    if not times:
        raise TraceError(f"{name}: empty trace (expected one millisecond timestamp per line)")
    if times[-1] == 0:
        raise TraceError(f"{name}: the trace must last a nonzero time (its last timestamp is 0)")
    return times


def load_trace(path: str | Path) -> list[int]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace ({exc.strerror})") from None
    return parse_trace(text, str(path))
