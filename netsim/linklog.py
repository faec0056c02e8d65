"""``mm-link``'s own logs (``--uplink-log`` / ``--downlink-log``): where a recorded run's link time starts.

The header names the trace, the command mm-link ran and two timestamps: ``init timestamp`` (wall clock, ms)
+ ``base timestamp`` is the link's time zero, the moment its trace started. Event lines follow:
``MS + BYTES`` (a packet entered the queue), ``MS # BYTES`` (a delivery opportunity), ``MS - BYTES DELAY``
(a departure), in ms since time zero.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_TITLE = re.compile(r"^# mahimahi mm-link \((\w+)\) \[(.+?)\]")


class LinkLogError(ValueError):
    """A file that is not an mm-link log, or lacks what a replay needs."""


@dataclass(frozen=True)
class LinkLog:
    direction: str  # "Uplink" or "Downlink"
    trace: str  # the trace file's name as mm-link was given it
    command: tuple[str, ...]  # mm-link's command line, mm-link itself first
    queue: str
    zero_wall_ms: float  # wall-clock time (ms since the epoch) of the link's time zero
    opportunities: int
    departed_bytes: int

    def link_ms(self, wall_s: float) -> float:
        """A wall-clock reading (s) on this link's time axis (ms since time zero)."""
        return wall_s * 1000.0 - self.zero_wall_ms

    def program(self) -> tuple[str, ...]:
        """The command mm-link ran inside its namespace (what follows ``--``)."""
        return self.command[self.command.index("--") + 1:] if "--" in self.command else ()


def parse_link_log(text: str, name: str = "<log>") -> LinkLog:
    header: dict[str, str] = {}
    title = None
    opportunities = departed = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            title = title or _TITLE.match(line)
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
            continue
        parts = line.split()
        if len(parts) < 3 or parts[1] not in "+#-":
            raise LinkLogError(f"{name}: line {number}: {line[:40]!r} is not an mm-link log event")
        if parts[1] == "#":
            opportunities += 1
        elif parts[1] == "-":
            departed += int(parts[2])
    missing = [key for key in ("command line", "init timestamp", "base timestamp") if key not in header]
    if title is None or missing:
        raise LinkLogError(f"{name}: not an mm-link log (expected a '# mahimahi mm-link (Uplink) [TRACE]' title "
                           f"and the headers command line, init timestamp, base timestamp; missing "
                           f"{', '.join(missing) or 'the title'})")
    try:
        zero = float(header["init timestamp"]) + float(header["base timestamp"])
    except ValueError:
        raise LinkLogError(f"{name}: init/base timestamps must be numbers of ms, got "
                           f"{header['init timestamp']!r} and {header['base timestamp']!r}") from None
    return LinkLog(direction=title.group(1), trace=title.group(2), command=tuple(shlex.split(header["command line"])),
                   queue=header.get("queue", "infinite"), zero_wall_ms=zero, opportunities=opportunities,
                   departed_bytes=departed)


def load_link_log(path: str | Path) -> LinkLog:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LinkLogError(f"{path}: cannot read mm-link log ({exc.strerror})") from None
    return parse_link_log(text, str(path))
