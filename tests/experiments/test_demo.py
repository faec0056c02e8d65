"""The demo pipeline with a tiny clip: real processes, and a table whose accounting adds up."""

import json

from splitinf.cli import main


def test_demo_runs_every_mode_and_accounts_for_every_frame(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--frames", "8", "--start-frame", "770", "--uplink", "2mbit", "--downlink", "10mbit",
                 "--out", str(out), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [r["mode"] for r in rows] == ["split", "jpeg", "local", "auto"]
    for r in rows:
        assert r["frames"] == 8 and r["accounted"] == 8
        assert r["edge"] + r["local"] + r["filtered"] + r["stale"] + r["failed"] == 8
    assert rows[2]["kb_per_frame"] == 0 and rows[1]["kb_per_frame"] > 0
    for name in ("summary.md", "summary.json", "latency.png", "annotated_split.mp4"):
        assert (out / name).stat().st_size > 0
