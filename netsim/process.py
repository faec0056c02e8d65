"""Run ``splitinf netsim relay`` as a real child process (for benchmarks, tests and the demo)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


class RelayProcess:
    """``with RelayProcess(connect="127.0.0.1:5555", args=[...]) as relay: relay.port, relay.epoch``."""

    def __init__(self, connect: str, args: Sequence[str] = (), listen: str = "127.0.0.1:0",
                 startup_timeout: float = 30.0) -> None:
        self.connect, self.args, self.listen = connect, list(args), listen
        self.startup_timeout = startup_timeout
        self.port = 0
        self.pid = 0
        self.epoch = 0.0
        self.summary: dict | None = None
        self._process: subprocess.Popen | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="splitinf-relay-")

    def start(self) -> RelayProcess:
        ready = Path(self._folder.name) / "ready.json"
        command = [sys.executable, "-m", "splitinf", "netsim", "relay", "--listen", self.listen,
                   "--connect", self.connect, "--ready-file", str(ready), *self.args]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.startup_timeout
        while not ready.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"netsim relay exited at start: {self._process.stderr.read().strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"netsim relay did not start within {self.startup_timeout} s")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        self.port, self.epoch, self.pid = info["port"], info["epoch"], info["pid"]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def link_ms(self, monotonic_time: float) -> float:
        """A ``time.monotonic()`` reading on the relay's link clock (ms since the link started)."""
        return (monotonic_time - self.epoch) * 1000.0

    def stop(self) -> dict | None:
        if self._process is None:
            return self.summary
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            out, _ = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            out, _ = self._process.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        self.summary = json.loads(lines[-1]) if lines else None
        self._process = None
        self._folder.cleanup()
        return self.summary

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
