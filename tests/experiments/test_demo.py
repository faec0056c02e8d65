"""The demo pipeline with a tiny clip: real processes, a table whose numbers are checked against what they
mean, and every frame of every mode in the per-frame output exactly once."""

import json
import shutil

import pytest

from splitinf.cli import main
from splitinf.weights.assets import home


def run_demo(tmp_path, capsys, modes: str, *more: str) -> tuple[dict, object]:
    out = tmp_path / "demo"
    assert main(["demo", "--modes", modes, "--frames", "8", "--start-frame", "770", "--uplink", "2mbit",
                 "--downlink", "10mbit", "--out", str(out), "--json", *more]) == 0
    rows = {r["mode"]: r for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]}
    for mode in modes.split(","):
        frames = [json.loads(line)["frame"] for line in (out / mode / "frames.jsonl").read_text().splitlines()]
        assert sorted(frames) == list(range(8)), mode  # each captured frame exactly once
        assert rows[mode]["edge"] + rows[mode]["local"] >= 1  # something was delivered
    return rows, out


def test_demo_local_is_the_unsplit_model_and_split_stays_close(tmp_path, capsys):
    rows, out = run_demo(tmp_path, capsys, "local,split", "--engine", "torch", "--device-slowdown", "1")
    assert rows["local"]["fidelity_ap"] == pytest.approx(1.0)  # the unsplit model against itself
    assert rows["local"]["kb_per_frame"] == 0 and rows["split"]["kb_per_frame"] > 0
    assert rows["split"]["fidelity_ap"] >= 0.5  # the shipped bottleneck keeps most of the model's detections
    for name in ("summary.md", "summary.json", "latency.png", "annotated_split.mp4"):
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_demo_runs_every_mode_on_the_board_by_default(tmp_path, capsys):
    exported = home() / "exported"  # the tests' own home (conftest): the demo exports the board's engine there
    existed = exported.exists()
    try:
        rows, out = run_demo(tmp_path, capsys, "split,jpeg,local,auto")
    finally:  # what it exported must not change which engine later tests' devices run
        if not existed:
            shutil.rmtree(exported, ignore_errors=True)
    assert list(rows) == ["split", "jpeg", "local", "auto"]
    summary = json.loads((out / "local" / "summary.json").read_text())
    assert summary["engine"] == "onnx-int8"  # exported once into $SPLITINF_HOME where missing
    assert rows["local"]["fidelity_ap"] >= 0.7  # int8 against the fp32 model
    assert rows["jpeg"]["kb_per_frame"] > rows["split"]["kb_per_frame"] > 0
