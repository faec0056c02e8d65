"""The one place that imports ZeroMQ and builds sockets (DESIGN.md §3), for both sides of the system.

Edge: a ROUTER socket (many devices, replies routed by identity) with a maximum message size, optionally a
CurveZMQ server that admits only listed device keys. Device: a DEALER socket (several frames in flight).
Every socket has ``linger=0`` so that closing never blocks on unsent data.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from splitinf.protocol import MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES

MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES
EDGE_KEY = "edge"
CLIENTS = "clients"


class TransportError(ValueError):
    """A socket address or key setup that cannot work, named precisely."""


def context() -> zmq.Context:
    return zmq.Context.instance()


def _socket(kind: int) -> zmq.Socket:
    sock = context().socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


@dataclass
class EdgeEndpoint:
    socket: zmq.Socket
    authenticator: ThreadAuthenticator | None

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.authenticator is not None:
            self.authenticator.stop()


def edge_socket(bind: str, auth_dir: str | Path | None = None) -> EdgeEndpoint:
    """A bound ROUTER; with ``auth_dir`` a CurveZMQ server admitting only the keys in ``auth_dir/clients``."""
    sock = _socket(zmq.ROUTER)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # a peer announcing more is disconnected by libzmq
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # replies to a vanished device raise instead of vanishing
    sock.setsockopt(zmq.RCVHWM, 1000)
    authenticator = None
    if auth_dir is not None:
        public, secret = load_keypair(Path(auth_dir) / f"{EDGE_KEY}.key_secret")
        clients = Path(auth_dir) / CLIENTS
        if not clients.is_dir() or not any(clients.glob("*.key")):
            raise TransportError(f"--auth {auth_dir}: no device public keys in {clients} (run `splitinf keys`)")
        authenticator = ThreadAuthenticator(context())
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(clients))
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = public, secret
    try:
        sock.bind(bind)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        if authenticator is not None:
            authenticator.stop()
        raise TransportError(f"cannot bind {bind!r}: {exc} (expected e.g. tcp://*:5555)") from None
    return EdgeEndpoint(sock, authenticator)


def device_socket(connect: str, key_file: str | Path | None = None, server_key: str | Path | None = None
                  ) -> zmq.Socket:
    """A DEALER connected to the edge (or a relay in front of it); CurveZMQ client when keys are given."""
    sock = _socket(zmq.DEALER)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    sock.setsockopt(zmq.SNDHWM, 64)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing for an edge that is not there: the device accounts at once
    if (key_file is None) != (server_key is None):
        sock.close(linger=0)
        raise TransportError("authentication needs both --key (this device's secret key) and --server-key")
    if key_file is not None:
        public, secret = load_keypair(Path(key_file))
        server_public, _ = load_keypair(Path(server_key))
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public
    try:
        sock.connect(connect)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise TransportError(f"cannot connect to {connect!r}: {exc} (expected e.g. tcp://HOST:5555)") from None
    return sock


def load_keypair(path: Path) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise TransportError(f"key file {path} does not exist (run `splitinf keys`)")
    try:
        return zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise TransportError(f"key file {path} is not a ZeroMQ certificate: {exc}") from None


def generate_keys(folder: str | Path, devices: list[str]) -> dict[str, Path]:
    """An edge key pair and one key pair per device; device public keys are copied to ``clients/``."""
    folder = Path(folder)
    (folder / CLIENTS).mkdir(parents=True, exist_ok=True)
    made = {}
    for name in [EDGE_KEY, *devices]:
        public, secret = zmq.auth.create_certificates(str(folder), name)
        made[name] = Path(secret)
        if name != EDGE_KEY:
            shutil.copy(public, folder / CLIENTS / Path(public).name)
    return made


class HandshakeMonitor:
    """Counts the connections whose ZMTP/CurveZMQ handshake never succeeded (no key, a wrong key, not ZeroMQ).

    libzmq reports a failed handshake only when the server notices it first; a client that gives up first
    just disconnects. So a rejection is also counted as an accepted connection that never shook hands.
    """

    EVENTS = (zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
              | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)

    def __init__(self, sock: zmq.Socket) -> None:
        self.socket = sock.get_monitor_socket(self.EVENTS)
        self.accepted = self.succeeded = self.failed = 0

    def read(self) -> None:
        while True:
            try:
                event = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = int.from_bytes(event[0][:2], "little")
            if kind == zmq.EVENT_ACCEPTED:
                self.accepted += 1
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.succeeded += 1
            else:
                self.failed += 1

    @property
    def rejected(self) -> int:
        return max(self.failed, self.accepted - self.succeeded)


_wake_numbers = itertools.count()


def wake_pair() -> tuple[zmq.Socket, zmq.Socket]:
    """(sender, receiver): an in-process PAIR whose messages wake a poll on the receiver, for another thread to
    tell an event loop that something is ready (the sender is not thread-safe: guard it with a lock)."""
    address = f"inproc://wake-{next(_wake_numbers)}"
    receiver = context().socket(zmq.PAIR)
    receiver.bind(address)
    sender = context().socket(zmq.PAIR)
    sender.connect(address)
    return sender, receiver


def poller(*sockets: zmq.Socket) -> zmq.Poller:
    p = zmq.Poller()
    for sock in sockets:
        p.register(sock, zmq.POLLIN)
    return p


def bound_address(sock: zmq.Socket) -> str:
    """Where a socket bound with a wildcard port (``tcp://127.0.0.1:*``) really listens."""
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


def echo_forever(bind: str = "tcp://127.0.0.1:*") -> None:
    """A ROUTER that sends every message back (a baseline peer for benchmarks); prints its address first."""
    endpoint = edge_socket(bind)
    print(bound_address(endpoint.socket), flush=True)
    while True:
        endpoint.socket.send_multipart(endpoint.socket.recv_multipart())


def receive(sock: zmq.Socket) -> list[bytes] | None:
    """The next message waiting on ``sock``, or None when there is none (never blocks)."""
    try:
        return sock.recv_multipart(zmq.NOBLOCK)
    except zmq.Again:
        return None


def send(sock: zmq.Socket, frames: list[bytes]) -> bool:
    """Hand a message to ``sock`` without blocking: False when no peer can take it now."""
    try:
        sock.send_multipart(frames, zmq.NOBLOCK)
        return True
    except zmq.Again:
        return False


def inproc_pair(name: str) -> tuple[zmq.Socket, zmq.Socket]:
    """Two connected PAIR sockets inside the process: a thread hands messages to the socket-owning thread."""
    a, b = _socket(zmq.PAIR), _socket(zmq.PAIR)
    address = f"inproc://{name}-{id(a)}"
    a.bind(address)
    b.connect(address)
    return a, b


Again = zmq.Again
ZMQError = zmq.ZMQError
POLLIN = zmq.POLLIN
NOBLOCK = zmq.NOBLOCK
