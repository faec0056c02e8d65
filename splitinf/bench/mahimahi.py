"""Replay a recorded ``mm-link`` run through ``splitinf netsim relay`` and compare what each delivered.

A recorded run (shared/data/mahimahi-reference/*, its README says how they were made) is a folder with
mm-link's ``uplink.log``, the sender's ``sender.json`` and the receiver's ``receiver.json`` (every ``recv`` with
its wall-clock time). The replay starts a real relay with the trace the log names on both directions, a
receiver behind it, and runs the very sender the log names (``send.py HOST PORT SECONDS CAP OUT [CC]``,
found beside the run's folder) with the same duration, rate cap and congestion control, started at the same
moment of link time. Both runs' application bytes are then counted in 1-s windows of link time (mm-link's
time zero from its log header, the relay's from its ready file) over the interval both were saturated:
from one second after the later first byte to the earlier end of the two senders.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splitinf.bench.sink import Sink
from splitinf.netsim.cli import find_trace
from splitinf.netsim.linklog import LinkLog, LinkLogError, load_link_log
from splitinf.netsim.process import RelayProcess

WARMUP_MS = 1000.0  # slow start behind mm-link: the first second after the first byte is not compared
WINDOW_MS = 1000.0
SPAWN_S = 0.05  # about how long a Python sender takes to start; it records its own start anyway
# The relay as it was before packets on the link: every opportunity carried 1504 bytes of payload.
STREAM_LEVEL = ("--mtu", "1504", "--ip-tcp-header-bytes", "0", "--tun-header-bytes", "0")


@dataclass(frozen=True)
class Transfer:
    """One bulk transfer on a link-time axis: the sender's active interval and every receipt."""

    start_ms: float
    end_ms: float
    receipts: tuple[tuple[float, int], ...]  # (link ms, bytes)

    def first_byte_ms(self) -> float:
        return self.receipts[0][0] if self.receipts else float("inf")

    def bytes_between(self, start: float, end: float) -> int:
        return sum(n for t, n in self.receipts if start < t <= end)


@dataclass(frozen=True)
class RecordedRun:
    name: str
    log: LinkLog
    trace: Path
    sender_script: Path
    seconds: float
    cap_bytes_per_s: float
    congestion_control: str  # "" = the kernel's default
    transfer: Transfer


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LinkLogError(f"{path}: cannot read the recorded run's JSON ({exc})") from None


def load_run(folder: str | Path) -> RecordedRun:
    """A recorded run's folder → what the replay needs, each missing piece named."""
    folder = Path(folder)
    log = load_link_log(folder / "uplink.log")
    program = log.program()
    if len(program) < 7 or not program[1].endswith(".py"):
        raise LinkLogError(f"{folder / 'uplink.log'}: mm-link ran {' '.join(program) or 'nothing'!r}; expected "
                           "'python3 send.py HOST PORT SECONDS CAP OUT [CC]'")
    script_name = Path(program[1]).name
    scripts = [folder / script_name, folder.parent / script_name]
    script = next((p for p in scripts if p.is_file()), None)
    if script is None:
        raise LinkLogError(f"the sender {script_name} the log names is in neither {scripts[0].parent} nor "
                           f"{scripts[1].parent}")
    trace = find_trace(log.trace) or find_trace(str(folder.parent.parent / "traces" / log.trace))
    if trace is None:
        raise LinkLogError(f"trace {log.trace} (named by {folder / 'uplink.log'}) not found: put it in "
                           "$SPLITINF_TRACES or ../shared/data/traces")
    sender, receiver = _read_json(folder / "sender.json"), _read_json(folder / "receiver.json")
    transfer = Transfer(log.link_ms(sender["start_real"]), log.link_ms(sender["end_real"]),
                        tuple((log.link_ms(wall), n) for _, wall, n in receiver["rec"]))
    return RecordedRun(folder.name, log, trace, script, float(program[4]), float(program[5]),
                       program[7] if len(program) > 7 else "", transfer)


def replay(run: RecordedRun, seconds: float | None = None, relay_args: Sequence[str] = ()) -> Transfer:
    """The run's transfer again, through a real relay process (``seconds``: a shorter transfer)."""
    seconds = run.seconds if seconds is None else seconds
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory(prefix="splitinf-mahimahi-") as folder, \
                RelayProcess(f"127.0.0.1:{sink.port}",
                             ["--uplink", str(run.trace), "--downlink", str(run.trace), *relay_args]) as relay:
            time.sleep(max(0.0, relay.epoch + run.transfer.start_ms / 1000 - SPAWN_S - time.monotonic()))
            out = Path(folder) / "sender.json"
            command = [sys.executable, str(run.sender_script), "127.0.0.1", str(relay.port), str(seconds),
                       str(run.cap_bytes_per_s), str(out), *([run.congestion_control] if run.congestion_control
                                                             else [])]
            result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
            if result.returncode != 0:
                raise RuntimeError(f"the sender {run.sender_script.name} failed: {result.stderr.strip()[-400:]}")
            sender = json.loads(out.read_text())
            receipts = tuple((relay.link_ms(t), n) for t, n in sink.arrivals)
    finally:
        sink.close()
    return Transfer(relay.link_ms(sender["start_mono"]), relay.link_ms(sender["end_mono"]), receipts)


@dataclass(frozen=True)
class Agreement:
    interval_ms: tuple[float, float]
    reference_bytes: int
    replay_bytes: int
    window_ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        return self.replay_bytes / self.reference_bytes

    def windows_within(self, tolerance: float) -> float:
        """Share of the windows whose ratio is within ± ``tolerance``."""
        return sum(abs(r - 1) <= tolerance for r in self.window_ratios) / len(self.window_ratios)

    def as_dict(self) -> dict:
        return {"interval_ms": [round(t, 1) for t in self.interval_ms], "mm_link_bytes": self.reference_bytes,
                "relay_bytes": self.replay_bytes, "ratio": round(self.ratio, 4),
                "windows": len(self.window_ratios), "windows_within_3pct": round(self.windows_within(0.03), 3),
                "window_ratio_min": round(min(self.window_ratios), 4),
                "window_ratio_max": round(max(self.window_ratios), 4)}


def compare(reference: Transfer, replayed: Transfer, warmup_ms: float = WARMUP_MS,
            window_ms: float = WINDOW_MS) -> Agreement:
    """Application bytes of both transfers in whole windows of the interval both were saturated."""
    start = max(reference.first_byte_ms(), replayed.first_byte_ms()) + warmup_ms
    count = int((min(reference.end_ms, replayed.end_ms) - start) // window_ms)
    if count < 1:
        raise ValueError(f"the transfers share no whole {window_ms:g}-ms window after the warm-up "
                         f"(common interval from {start:.0f} ms to {min(reference.end_ms, replayed.end_ms):.0f} ms)")
    edges = [start + k * window_ms for k in range(count + 1)]
    ratios = []
    for a, b in zip(edges, edges[1:]):
        expected = reference.bytes_between(a, b)
        ratios.append(replayed.bytes_between(a, b) / expected if expected else float("inf"))
    return Agreement((edges[0], edges[-1]), reference.bytes_between(edges[0], edges[-1]),
                     replayed.bytes_between(edges[0], edges[-1]), tuple(ratios))
