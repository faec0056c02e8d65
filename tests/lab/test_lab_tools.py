"""The lab's tools keep running against the package they study: each answers --help, and the what-if cost
tool writes costs the benchmark replays."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitinf.cli import main

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted((ROOT / "lab" / "tools").glob("*.py"))


def test_every_lab_tool_still_imports_and_explains_itself():
    # All at once: each spends its few seconds importing torch, and they need not wait for one another.
    running = {tool.name: subprocess.Popen([sys.executable, str(tool), "--help"], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True) for tool in TOOLS}
    assert len(running) >= 4
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "usage:" in out, (name, err[-500:])


def test_whatif_costs_replace_the_split_by_a_hypothetical_one_the_bench_replays(capsys, tmp_path):
    """lab/tools/whatif_costs.py: the saved split's device times scaled to --head-ms, its bytes set, its name
    saying it is hypothetical; the bench replays it like any saved costs."""
    saved_costs = ROOT / "docs" / "sweep" / "costs.json"
    whatif = tmp_path / "whatif.json"
    subprocess.run([sys.executable, str(ROOT / "lab" / "tools" / "whatif_costs.py"), str(saved_costs), str(whatif),
                    "--head-ms", "60", "--bytes", "1300"], check=True, timeout=120)
    saved = {c["name"]: c for c in json.loads(saved_costs.read_text())["costs"]}
    costs = {c["name"]: c for c in json.loads(whatif.read_text())["costs"]}
    split = costs["split:whatif_60ms_1300B"]
    original = saved["split:person_s16t7_c32_k27_gpu"]
    assert split["device_ms"] == pytest.approx(60) and split["uplink_bytes"] == 1300
    assert split["edge_ms"] == original["edge_ms"]
    scale = 60 / original["device_ms"]  # the spread scaled with the mean
    assert split["device_samples_ms"] == pytest.approx([t * scale for t in original["device_samples_ms"]])
    assert costs["local"] == saved["local"] and costs["jpeg"] == saved["jpeg"]
    assert main(["bench", "adaptive", "--costs", str(whatif), "--seconds", "6", "--seeds", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "split:whatif_60ms_1300B" in next(iter(result["traces"].values()))["auto_choices"]
