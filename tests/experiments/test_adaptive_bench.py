"""``splitinf bench adaptive``: its JSON contract and its accounting, on a few seconds of every trace."""

import json

from splitinf.cli import main


def test_bench_adaptive_accounts_for_every_frame_on_every_trace(capsys):
    assert main(["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "2", "--json"]) == 0
    traces = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["traces"]
    assert len(traces) == 6 and "ATT-LTE-driving.up" in traces
    for result in traces.values():
        assert result["accounted"] == result["frames"] == 2 * 60
        assert result["best_fixed_mode"] in ("local", "jpeg")
        assert set(result["auto_choices"]) == {"local", "jpeg"}
        assert 0 < result["auto_p95_ms"] <= 2000 and 0 < result["best_fixed_p95_ms"] <= 2000
