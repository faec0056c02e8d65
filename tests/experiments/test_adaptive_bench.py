"""``splitinf bench adaptive``: its JSON contract and its accounting, on a few seconds of every trace."""

import json

import pytest

from splitinf.cli import main


def test_bench_adaptive_accounts_for_every_frame_on_every_trace(capsys):
    assert main(["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "2", "--json"]) == 0
    traces = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["traces"]
    assert len(traces) == 6 and "ATT-LTE-driving.up" in traces
    for result in traces.values():
        assert result["accounted"] == result["frames"] == 2 * 60
        assert result["best_fixed_mode"] in ("local", "jpeg")
        assert set(result["auto_choices"]) == {"local", "jpeg"}
        assert result["auto_minus_best_ms"] == pytest.approx(result["auto_p95_ms"] - result["best_fixed_p95_ms"],
                                                             abs=0.11)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_adaptive_replays_saved_costs_exactly(capsys, tmp_path):
    """Measured costs saved with --save-costs and replayed with --costs give the very same results (a
    comparison of two policies or two commits that no CPU drift can blur)."""
    saved = tmp_path / "costs.json"
    argv = ["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "2", "--json"]
    assert main([*argv, "--save-costs", str(saved)]) == 0
    measured = last_json(capsys)
    assert main([*argv, "--costs", str(saved)]) == 0
    assert last_json(capsys) == measured


@pytest.mark.parametrize("content, message", [(None, "no such file (write one with splitinf bench adaptive"),
                                              ('{"costs": []}', "is not a file written by --save-costs"),
                                              ('{"device_slowdown": 1, "costs": []}', "has no local mode")])
def test_bench_adaptive_names_bad_saved_costs(capsys, tmp_path, content, message):
    path = tmp_path / "costs.json"
    if content is not None:
        path.write_text(content)
    assert main(["bench", "adaptive", "--costs", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_edge_costs_from_another_edge_replace_this_machines(capsys, tmp_path):
    """--edge-costs (a file `splitinf bench edge --save-edge-costs` writes, e.g. on a GPU): the offloading
    modes take its edge times, the run says which edge it models, and a faster edge makes JPEG faster; a file
    without a mode's time is named with what it has."""
    saved, edge = tmp_path / "costs.json", tmp_path / "edge.json"
    argv = ["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "1", "--json"]
    assert main([*argv, "--save-costs", str(saved)]) == 0
    here = last_json(capsys)
    edge.write_text(json.dumps({"edge": "a faster edge", "edge_ms": {"jpeg": 1.0}}))
    assert main([*argv, "--costs", str(saved), "--edge-costs", str(edge)]) == 0
    there = last_json(capsys)
    assert (here["edge"], there["edge"], there["edge_ms"]) == ("this machine", "a faster edge", {"jpeg": 1.0})
    assert here["edge_ms"]["jpeg"] > 10
    jpeg = {trace: (result["fixed_p95_ms"]["jpeg"], here["traces"][trace]["fixed_p95_ms"]["jpeg"])
            for trace, result in there["traces"].items()}
    assert all(faster <= slower for faster, slower in jpeg.values()), jpeg  # the slowest links hit the deadline
    assert sum(faster < slower - 10 for faster, slower in jpeg.values()) >= 2, jpeg
    edge.write_text(json.dumps({"edge": "x", "edge_ms": {"split:other": 1.0}}))
    assert main([*argv, "--costs", str(saved), "--edge-costs", str(edge)]) == 2
    assert "has no edge time for jpeg (it has split:other)" in capsys.readouterr().err
