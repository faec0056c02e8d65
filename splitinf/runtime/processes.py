"""Start ``splitinf-edge`` and ``splitinf-device`` as real processes (benchmarks, the demo, tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def script(name: str, bin_dir: Path | None = None) -> str:
    """A console script of the running environment (beside its python) or of ``bin_dir``, whatever PATH says."""
    return str((bin_dir or Path(sys.executable).parent) / name)


def half_the_cores() -> list[str]:
    """``--threads`` for an edge or a device that shares this machine with the other: half its cores each, as
    if each had a machine of its own. At torch's default both use every core and slow each other down (on two
    cores the edge's full model took a whole 10 fps frame period)."""
    return ["--threads", str(max(1, (os.cpu_count() or 2) // 2))]


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in kB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces): [state, ppid, …]."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, …), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):  # it ended while we looked
                continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    """The process's argv joined by spaces (its title, for processes that set one), or "" once it ended."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it ended)."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EdgeProcess:
    """``with EdgeProcess(["--max-batch", "8"]) as edge: edge.address`` — ready once it serves. Without a
    ``port`` the edge binds any free one itself and reports it in its ready file (no port picked here and
    raced for)."""

    def __init__(self, args: Sequence[str] = (), port: int | None = None, startup_timeout: float = 180.0,
                 bin_dir: Path | None = None, cwd: Path | None = None) -> None:
        self.port = port
        self.bin_dir, self.cwd = bin_dir, cwd
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.summary: dict | None = None
        self.log: list[str] = []
        self.metrics: str | None = None

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> EdgeProcess:
        with tempfile.TemporaryDirectory(prefix="splitinf-edge-") as folder:
            ready = Path(folder) / "ready.json"
            bind = self.address if self.port else "tcp://127.0.0.1:*"
            self.process = subprocess.Popen([script("splitinf-edge", self.bin_dir), "--bind", bind, "--ready-file",
                                             str(ready), *self.args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, cwd=self.cwd)
            threading.Thread(target=self._drain, daemon=True).start()
            deadline = time.monotonic() + self.startup_timeout
            while not ready.exists() and self.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)  # polling the edge's own signal, not waiting a guessed time
            if not ready.exists():
                self.kill()
                raise RuntimeError("splitinf-edge did not start: " + "".join(self.log[-5:]).strip())
            reported = json.loads(ready.read_text())
            self.port = int(reported["address"].rsplit(":", 1)[1])
            self.metrics = reported.get("metrics")  # http://host:port with --metrics-port
        return self

    def _drain(self) -> None:  # keep reading stderr so the edge never blocks on a full pipe
        for line in self.process.stderr:
            self.log.append(line)

    def stop(self, sig: int = signal.SIGINT) -> dict | None:
        """Stop it (SIGINT: clean shutdown with a summary) and return the summary it printed."""
        if self.process is None:
            return self.summary
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out = self.process.stdout.read()
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out = ""
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.summary = json.loads(lines[-1]) if lines else None
        self.process = None
        return self.summary

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def device_command(connect: str, source: str, folder: Path, args: Sequence[str] = (),
                   bin_dir: Path | None = None) -> list[str]:
    """A splitinf-device command writing frames.jsonl and summary.json into ``folder``."""
    return [script("splitinf-device", bin_dir), "--connect", connect, "--source", source, "--output",
            str(folder / "frames.jsonl"), "--summary-json", str(folder / "summary.json"), *args]


def device_results(folder: Path) -> tuple[dict, list[dict]]:
    """(summary, one record per frame) written by a device started with :func:`device_command`."""
    frames = [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]
    return json.loads((folder / "summary.json").read_text()), frames


def run_device(connect: str, source: str, folder: Path, args: Sequence[str] = (), timeout: float = 600,
               bin_dir: Path | None = None, cwd: Path | None = None) -> tuple[dict, list[dict]]:
    result = subprocess.run(device_command(connect, source, folder, args, bin_dir), capture_output=True, text=True,
                            timeout=timeout, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"splitinf-device failed: {result.stderr.strip()[-500:]}")
    return device_results(folder)
