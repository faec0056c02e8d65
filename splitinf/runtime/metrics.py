"""What the edge exposes to Prometheus (``splitinf-edge --metrics-port``), and its health check.

``GET /metrics``: the Prometheus text format, written by ``prometheus-client`` — frames, results and errors per
device and mode, error replies per code, batch sizes, queue depth, live devices, and per-stage latency
histograms (queue, decode, tail). ``GET /healthz``: 200 once the tail is loaded and the event loop serves,
503 before (and after it stopped), so that a load balancer or Kubernetes sends devices only to a ready edge.

The event loop updates the metrics; an HTTP thread of its own reads them (``prometheus-client`` metrics are
thread-safe), so a slow scraper never holds a frame up.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_DEVICE_LABELS = 256  # devices labelled by name; more (a flood of short-lived ones) share device="other"
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


def prometheus_client():
    try:
        import prometheus_client as client
    except ImportError:
        raise ValueError("--metrics-port needs the prometheus-client package: pip install 'splitinf[edge]'") \
            from None
    return client


class EdgeMetrics:
    """The edge's counters as Prometheus metrics, in a registry of their own (several edges in one process,
    as in the tests, do not collide)."""

    def __init__(self) -> None:
        client = prometheus_client()
        self.registry = client.CollectorRegistry()
        r = self.registry
        self.frames = client.Counter("splitinf_edge_frames", "Frames received, per device and mode",
                                     ["device", "mode"], registry=r)
        self.results = client.Counter("splitinf_edge_results", "Detections sent back, per device and mode",
                                      ["device", "mode"], registry=r)
        self.errors = client.Counter("splitinf_edge_errors", "ERROR replies, per device and code "
                                     "(payload, overloaded, internal, malformed, fingerprint, no-handshake, …)",
                                     ["device", "code"], registry=r)
        self.bytes_in = client.Counter("splitinf_edge_received_bytes", "Bytes of frames received, per device",
                                       ["device"], registry=r)
        self.batch_size = client.Histogram("splitinf_edge_batch_size", "Frames per batch through the tail",
                                           buckets=BATCH_BUCKETS, registry=r)
        self.stage = client.Histogram("splitinf_edge_stage_seconds", "Per-frame time in each edge stage",
                                      ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.queue_depth = client.Gauge("splitinf_edge_queue_depth", "Frames waiting for the tail", registry=r)
        self.devices = client.Gauge("splitinf_edge_devices", "Devices with a live handshake", registry=r)
        self.ready = client.Gauge("splitinf_edge_ready", "1 once the tail is loaded and the edge serves",
                                  registry=r)
        self.is_ready = False
        self._labelled: set[str] = set()

    def set_ready(self, ready: bool) -> None:
        self.is_ready = ready
        self.ready.set(1 if ready else 0)

    def device(self, name: str) -> str:
        """The label for a device name, bounded in number (each label set is a series kept in memory)."""
        if name in self._labelled:
            return name
        if len(self._labelled) < MAX_DEVICE_LABELS:
            self._labelled.add(name)
            return name
        return "other"

    def exposition(self) -> bytes:
        return prometheus_client().generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` over HTTP on ``host:port`` (0: any free port, see :attr:`port`)."""

    def __init__(self, metrics: EdgeMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        content_type = prometheus_client().CONTENT_TYPE_LATEST

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, metrics.exposition(), content_type)
                elif path == "/healthz":
                    body = json.dumps({"ready": metrics.is_ready}).encode()
                    self._send(200 if metrics.is_ready else 503, body, "application/json")
                else:
                    self._send(404, b"splitinf-edge serves /metrics and /healthz\n", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes every few seconds are not news
                pass

        try:
            self.http = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ValueError(f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror})") from None
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        self.address = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.http.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
