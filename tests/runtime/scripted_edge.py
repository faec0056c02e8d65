"""A scripted edge for device tests: a real ROUTER socket in a thread that greets devices, answers their
heartbeats (unless muted) and answers each FRAME as a script says (a RESULT with no detections, an ERROR, or
nothing at all)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import zmq

from splitinf.protocol import Error, Frame, Heartbeat, Hello, Result, Welcome, decode, encode
from splitinf.runtime import transport

# seq → "result" | "silence" | an ERROR code
Script = Callable[[int], str]


class ScriptedEdge(threading.Thread):
    def __init__(self, fingerprint: str, script: Script = lambda seq: "result", heartbeat_ms: int = 1000) -> None:
        super().__init__(daemon=True, name="scripted-edge")
        self.fingerprint, self.script, self.heartbeat_ms = fingerprint, script, heartbeat_ms
        self.muted = threading.Event()  # set: the edge hears everything and answers nothing (a hung edge)
        self.hellos = 0
        self.endpoint = transport.edge_socket("tcp://127.0.0.1:*")
        self.address = self.endpoint.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.frames: list[int] = []  # seq of every FRAME received
        self.stop = threading.Event()

    def run(self) -> None:
        sock = self.endpoint.socket
        try:
            while not self.stop.is_set():
                if not sock.poll(50):
                    continue
                identity, *frames = sock.recv_multipart()
                message = decode(frames)
                if self.muted.is_set():
                    continue
                if isinstance(message, Hello):
                    self.hellos += 1
                    reply = Welcome("scripted", self.fingerprint, 8, self.heartbeat_ms)
                elif isinstance(message, Heartbeat):
                    reply = Heartbeat()
                elif isinstance(message, Frame):
                    self.frames.append(message.seq)
                    action = self.script(message.seq)
                    if action == "silence":
                        continue
                    reply = (Result(message.seq, 0, b"", b"", b"", {"queue": 0.0, "decode": 0.0, "tail": 0.0})
                             if action == "result" else Error(action, "scripted", message.seq))
                else:
                    continue
                sock.send_multipart([identity, *encode(reply)])
        finally:
            self.endpoint.close()

    def __enter__(self) -> ScriptedEdge:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(timeout=5)
