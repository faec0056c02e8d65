"""A variable-rate bottleneck across real processes: one edge decodes every rate; a device fixes one with
--rate, or lets --mode auto choose among them (each rate an operating point of its own)."""

import subprocess

from splitinf.bottleneck import load_for

from splitinf.models import build_detector
from splitinf.runtime.processes import device_command, device_results
from splitinf.training.distill import variable_rate
from splitinf.weights.checkpoints import default_bottleneck

from .conftest import VIDEO


def test_one_edge_serves_every_rate_and_auto_chooses_among_them(edge_factory, tmp_path):
    detector = build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")
    bottleneck = variable_rate(load_for(default_bottleneck(), detector), detector, [1.1, 2.7, 5.6], own_kb=2.7)
    bottleneck.eval().update_tables()
    checkpoint = tmp_path / "vr.pt"
    bottleneck.save(checkpoint)
    model = ["--bottleneck", str(checkpoint), "--threads", "1"]
    edge = edge_factory(model)
    runs = {"rate0": ["--rate", "0"], "rate2": ["--rate", "2"],
            "auto": ["--mode", "auto", "--auto-modes", "local,split", "--deadline-ms", "5000"]}
    started = {}
    for name, extra in runs.items():
        (tmp_path / name).mkdir()
        started[name] = subprocess.Popen(device_command(edge.address, VIDEO, tmp_path / name, [
            *model, "--engine", "torch", "--frames", "10", "--no-realtime", *extra]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for name, process in started.items():
        assert process.wait(timeout=300) == 0, (name, process.stderr.read()[-800:])
    summaries = {name: device_results(tmp_path / name)[0] for name in runs}
    assert summaries["rate0"]["counts"]["edge"] == summaries["rate2"]["counts"]["edge"] == 10
    assert summaries["rate0"]["bytes_per_frame"] < 0.7 * summaries["rate2"]["bytes_per_frame"]
    auto = summaries["auto"]
    assert auto["accounted"] == auto["frames"] == 10
    assert set(auto["auto_choices"]) == {"local", "split@0", "split@1", "split@2"}
    assert auto["counts"]["edge"] + auto["counts"]["local"] == 10
