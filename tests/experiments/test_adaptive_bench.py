"""``splitinf bench adaptive``: its JSON contract and its accounting, on a few seconds of every trace."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from splitinf.netsim.channel import Direction
from splitinf.netsim.schedule import PACKET_SIZE, ConstantRate, WithOutages

from splitinf.bench.adaptive import ClairvoyantPolicy
from splitinf.cli import main
from splitinf.runtime.policy import ModeEstimate


def test_bench_adaptive_accounts_for_every_frame_on_every_trace(capsys):
    assert main(["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "2", "--json"]) == 0
    traces = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["traces"]
    assert len(traces) == 6 and "ATT-LTE-driving.up" in traces
    for result in traces.values():
        assert result["accounted"] == result["frames"] == 2 * 60
        assert result["best_fixed_mode"] in ("local", "jpeg")
        assert set(result["auto_choices"]) == {"local", "jpeg"}
        assert 0 < result["auto_p95_ms"] <= 2000 and 0 < result["best_fixed_p95_ms"] <= 2000


def test_bench_adaptive_replays_policy_variants_on_the_same_costs_and_seeds(capsys):
    # distrust=1 is the policy's default: replayed on the same costs and seeds it must repeat auto exactly.
    argv = ["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "3",
            "--variant", "distrust=1", "--variant", "margin=5", "--json"]
    assert main(argv) == 0
    traces = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["traces"]
    for result in traces.values():
        default = {key: result[key] for key in ("auto_p95_ms", "auto_choices", "probes", "rescued")}
        assert result["variants"]["distrust=1"] == default
        assert result["standard_error_ms"] >= 0
        assert result["auto_minus_best_ms"] == pytest.approx(result["auto_p95_ms"] - result["best_fixed_p95_ms"],
                                                             abs=0.11)
        # margin=5: an offload's network time counts six times, which the round trip and edge alone rule out.
        assert result["variants"]["margin=5"]["auto_choices"]["jpeg"] == 0
    assert any(result["auto_choices"]["jpeg"] > 0 for result in traces.values())  # so the variant differs


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


@pytest.mark.parametrize("variant, message", [("margin", "is not KEY=VALUE"), ("speed=2", "is not KEY=VALUE"),
                                              ("margin=high", "margin needs a number, got 'high'")])
def test_bench_adaptive_names_a_bad_policy_variant(capsys, variant, message):
    with pytest.raises(SystemExit):
        main(["bench", "adaptive", "--variant", variant])
    assert message in capsys.readouterr().err


def test_the_oracle_forecasts_the_true_transfer_and_stays_local_before_an_outage():
    """The clairvoyant reference of ``--oracle``: an offload's tail is its device time + the real transfer
    time of its bytes from the emulated link (not a forecast), so it offloads up to the moment a frame would
    meet an outage — and never into it."""
    rate = PACKET_SIZE * 8 * 1000  # one packet per ms
    uplink = Direction(WithOutages(ConstantRate(rate), [(1000, 3000)]), delay_ms=20)
    modes = [ModeEstimate("local", 160.0), ModeEstimate("split", 90.0, uplink_bytes=2800, edge_ms=40.0)]
    oracle = ClairvoyantPolicy(modes, uplink.preview_message, base_rtt_ms=40, frame_period_ms=100, margin=0.5)
    # 2,800 bytes = two segments (1448 + 1352, each with 56 B of headers: one opportunity each), the first
    # sent 1 ms after the frame leaves the head: +2 ms, + 20 ms delay.
    assert oracle.tail_ms(modes[1], 0.0) == pytest.approx(90 + 2 + 20 + 40 + 20)
    assert oracle.margin == 0 and oracle.distrust == 0  # it knows the link: nothing to hedge
    assert oracle.choose(0.0) == "split"
    assert oracle.choose(905.0) == "split"  # sent at 995, its two packets leave at 996 and 997, just in time
    assert oracle.choose(950.0) == "local"  # sent at 1040, its bytes would wait out the outage
    assert oracle.tail_ms(modes[1], 950.0) > 2000
    assert uplink.counters.delivered_bytes == 0  # looking did not send anything


def test_the_oracle_knows_the_edge_is_still_busy_with_its_previous_offload():
    uplink = Direction(ConstantRate(PACKET_SIZE * 8 * 1000), delay_ms=20)  # one packet per ms
    modes = [ModeEstimate("local", 500.0), ModeEstimate("split", 90.0, uplink_bytes=2800, edge_ms=150.0)]
    oracle = ClairvoyantPolicy(modes, uplink.preview_message, base_rtt_ms=40, frame_period_ms=100)
    assert oracle.choose(0.0) == "split"  # at the edge at 90 + 2 + 20 = 112, done at 262
    # The next one, sent at 100, arrives at 122 and waits for the edge until 262.
    assert oracle.tail_ms(modes[1], 10.0) == pytest.approx(90 + (262 - 100) + 150 + 20)


def test_the_oracle_keeps_the_edge_free_when_a_datagram_of_its_offload_is_lost():
    arrivals = iter([112.0, None])  # previewed on time when ranked, then lost when sent (a datagram link)
    modes = [ModeEstimate("local", 500.0), ModeEstimate("split", 90.0, uplink_bytes=3000, edge_ms=150.0)]
    oracle = ClairvoyantPolicy(modes, lambda _size, _sent: next(arrivals), base_rtt_ms=40, frame_period_ms=100)
    assert oracle.choose(0.0) == "split"
    assert oracle.edge_free_ms == 0.0


def test_bench_adaptive_oracle_reports_its_p95_per_trace(capsys):
    argv = ["bench", "adaptive", "--modes", "local,jpeg", "--seconds", "6", "--seeds", "1", "--oracle", "--json"]
    assert main(argv) == 0
    for result in last_json(capsys)["traces"].values():
        assert 0 < result["oracle_p95_ms"] <= 2000
        assert result["oracle_minus_best_ms"] == pytest.approx(result["oracle_p95_ms"] - result["best_fixed_p95_ms"],
                                                               abs=0.11)


def test_whatif_costs_replace_the_split_by_a_hypothetical_one_the_bench_replays(capsys, tmp_path):
    """tools/whatif_costs.py: the saved split's device times scaled to --head-ms, its bytes set, its name
    saying it is hypothetical; the bench replays it like any saved costs."""
    root = Path(__file__).resolve().parents[2]
    whatif = tmp_path / "whatif.json"
    subprocess.run([sys.executable, str(root / "tools/whatif_costs.py"), str(root / "docs/costs/x1.58.json"),
                    str(whatif), "--head-ms", "60", "--bytes", "1300"], check=True)
    saved = {c["name"]: c for c in json.loads((root / "docs/costs/x1.58.json").read_text())["costs"]}
    costs = {c["name"]: c for c in json.loads(whatif.read_text())["costs"]}
    split = costs["split:whatif_60ms_1300B"]
    original = saved["split:person_s16t7_c32_k27_gpu"]
    assert split["device_ms"] == pytest.approx(60) and split["uplink_bytes"] == 1300
    assert split["edge_ms"] == original["edge_ms"]
    scale = 60 / original["device_ms"]  # the spread scaled with the mean
    assert split["device_samples_ms"] == pytest.approx([t * scale for t in original["device_samples_ms"]])
    assert costs["local"] == saved["local"] and costs["jpeg"] == saved["jpeg"]
    assert main(["bench", "adaptive", "--costs", str(whatif), "--seconds", "6", "--seeds", "1", "--json"]) == 0
    assert "split:whatif_60ms_1300B" in next(iter(last_json(capsys)["traces"].values()))["auto_choices"]
