"""``splitinf sweep`` (and its example): crossovers read off the table, and one short run end to end."""

import csv
import json
from pathlib import Path

import pytest

from splitinf.experiments.sweep import RATES_MBIT, crossovers, shared_traces
from tests.test_examples import load_example

CHECKPOINT = "person_s16t7_c32_k27_gpu.pt"  # the shipped one, by name
SAVED_COSTS = Path(__file__).resolve().parents[2] / "docs" / "sweep" / "costs.json"


def rows_at(p50s: dict[float, dict[str, float]]) -> list[dict]:
    return [{"link_kind": "constant", "mbit": rate, "mode": mode, "p50_ms": p50}
            for rate, by_mode in p50s.items() for mode, p50 in by_mode.items()]


def test_crossovers_name_the_rates_where_each_mode_takes_over():
    p50s = {0.5: {"local": 200, "jpeg": 2000, "split:a": 250, "split:b": 230},
            1: {"local": 200, "jpeg": 400, "split:a": 190, "split:b": 260},
            2: {"local": 200, "jpeg": 210, "split:a": 185, "split:b": 250},
            5: {"local": 200, "jpeg": 170, "split:a": 180, "split:b": 240},
            10: {"local": 200, "jpeg": 150, "split:a": 178, "split:b": 238}}
    rows = rows_at(p50s) + [{"link_kind": "trace", "mbit": None, "mode": "jpeg", "p50_ms": 1.0}]  # traces ignored
    assert crossovers(rows, ["local", "jpeg", "split:a", "split:b"]) == {
        "split_beats_jpeg_up_to_mbit": 2, "local_beats_offload_below_mbit": 0.5, "jpeg_beats_local_from_mbit": 5}


def test_crossovers_are_none_where_a_mode_never_wins():
    rows = rows_at({1: {"local": 100, "jpeg": 300}, 2: {"local": 100, "jpeg": 200}})
    assert crossovers(rows, ["local", "jpeg"]) == {
        "split_beats_jpeg_up_to_mbit": None, "local_beats_offload_below_mbit": 2, "jpeg_beats_local_from_mbit": None}


def test_the_example_sweeps_every_link_on_saved_costs(tmp_path, capsys):
    """The fast representative: every link × mode from saved costs, the table, the plot, the crossovers."""
    out = tmp_path / "sweep"
    example = load_example("latency_vs_bandwidth")
    assert example.main(["--out", str(out), "--costs", str(SAVED_COSTS), "--relay-points", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    modes = [c["name"] for c in json.loads(SAVED_COSTS.read_text())["costs"]]
    links = [f"{r}mbit" for r in RATES_MBIT] + shared_traces()
    assert sorted((r["link"], r["mode"]) for r in rows) == sorted((link, mode) for link in links for mode in modes)
    assert summary["points"] == len(rows)
    local = [r for r in rows if r["mode"] == "local"]
    assert len({(r["p50_ms"], r["p95_ms"]) for r in local}) == 1  # the link does not touch local inference
    assert (out / "latency_vs_bandwidth.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_example_sweeps_every_link_and_checks_one_point_with_real_processes(tmp_path, capsys):
    out = tmp_path / "sweep"
    example = load_example("latency_vs_bandwidth")
    assert example.main(["--out", str(out), "--bottleneck", CHECKPOINT, "--frames", "100", "--relay-points", "1",
                         "--relay-frames", "30", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    modes = ["local", "jpeg", "split:person_s16t7_c32_k27_gpu"]
    links = [f"{r}mbit" for r in RATES_MBIT] + shared_traces()
    assert [(r["link"], r["mode"]) for r in rows] == [(link, mode) for link in links for mode in modes]
    assert summary["points"] == len(rows) and set(summary["crossovers"]) == {
        "split_beats_jpeg_up_to_mbit", "local_beats_offload_below_mbit", "jpeg_beats_local_from_mbit"}
    local = [r for r in rows if r["mode"] == "local"]
    assert len({(r["p50_ms"], r["p95_ms"]) for r in local}) == 1  # the link does not touch local inference
    assert all(float(r["kb_per_frame"]) > 0 for r in rows if r["mode"] != "local")
    assert (out / "latency_vs_bandwidth.png").stat().st_size > 10_000
    [check] = json.loads((out / "relay_check.json").read_text())
    assert (check["mode"], check["uplink"]) == ("split", "1mbit")
    assert check["real_p50_ms"] > 0 and check["sim_p50_ms"] > 0
    # error is |sim − real| / real (from the unrounded p50s: the rounded ones agree to a thousandth)
    assert abs(check["error"] - abs(check["sim_p50_ms"] - check["real_p50_ms"]) / check["real_p50_ms"]) < 1e-3
    assert check == summary["relay_check"][0]
