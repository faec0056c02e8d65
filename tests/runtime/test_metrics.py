"""The edge's Prometheus endpoint and health check, scraped from a real ``splitinf-edge`` serving a real device,
parsed with prometheus-client's own parser: its counters equal what the device counted itself."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from splitinf.runtime.processes import EdgeProcess, run_device

VIDEO = "intel-sample-videos/one-by-one-person-detection.mp4"


def scrape(address: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(address + "/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def health(address: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(address + "/healthz", timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_metrics_match_the_devices_own_counts_and_health_says_ready(tmp_path):
    with EdgeProcess(["--threads", "1", "--metrics-port", "0"]) as edge:
        assert health(edge.metrics) == (200, {"ready": True})
        summary, _ = run_device(edge.address, VIDEO, tmp_path, ["--mode", "split", "--frames", "10",
                                                                 "--no-realtime", "--threads", "1", "--name",
                                                                 "cam-metrics", "--engine", "torch"])
        assert summary["counts"]["edge"] == 10
        with zmq.Context() as context, context.socket(zmq.DEALER) as stranger:  # a frame before any handshake
            stranger.connect(edge.address)
            stranger.send_multipart([b"not msgpack"])
            assert stranger.poll(10_000) and stranger.recv_multipart()
        samples = scrape(edge.metrics)
        labels = (("device", "cam-metrics"), ("mode", "split"))
        assert samples[("splitinf_edge_frames_total", labels)] == 10
        assert samples[("splitinf_edge_results_total", labels)] == 10
        assert samples[("splitinf_edge_errors_total", (("code", "malformed"), ("device", "unknown")))] == 1
        assert samples[("splitinf_edge_batch_size_count", ())] >= 1
        assert samples[("splitinf_edge_batch_size_sum", ())] == 10  # every frame went through the tail once
        assert samples[("splitinf_edge_stage_seconds_count", (("stage", "tail"),))] == 10
        assert samples[("splitinf_edge_ready", ())] == 1
        stopped = edge.stop()
    received = sum(d["bytes_in"] for d in stopped["devices"].values()) + stopped["departed"]["bytes_in"]
    assert samples[("splitinf_edge_received_bytes_total", (("device", "cam-metrics"),))] == received


def test_health_is_503_until_ready_and_device_labels_are_bounded():
    from splitinf.runtime.metrics import MAX_DEVICE_LABELS, EdgeMetrics, MetricsServer

    metrics = EdgeMetrics()
    server = MetricsServer(metrics)
    try:
        assert health(server.address) == (503, {"ready": False})  # loading: no device should be sent here yet
        metrics.set_ready(True)
        assert health(server.address) == (200, {"ready": True})
        labels = [metrics.device(f"cam{i}") for i in range(MAX_DEVICE_LABELS + 5)]
        assert labels[:MAX_DEVICE_LABELS] == [f"cam{i}" for i in range(MAX_DEVICE_LABELS)]
        assert set(labels[MAX_DEVICE_LABELS:]) == {"other"}
        with pytest.raises(ValueError, match=f"--metrics-port {server.port}: cannot listen"):
            MetricsServer(metrics, port=server.port)
    finally:
        server.close()
