"""The adaptive policy: lowest expected latency, reaction to rate changes and outages, probing."""

import pytest
from splitinf.netsim.channel import Direction
from splitinf.netsim.schedule import ConstantRate, WithOutages

from splitinf.experiments.pipeline_sim import ModeCost, fixed, simulate
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.policy import AdaptivePolicy, ModeEstimate
from splitinf.runtime.setup import ModelSetup

MODES = [ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0),
         ModeEstimate("split", 50.0, 2_500, 30.0)]


def fresh() -> AdaptivePolicy:
    return AdaptivePolicy([ModeEstimate(m.name, m.device_ms, m.uplink_bytes, m.edge_ms) for m in MODES],
                          frame_period_ms=100)  # a 10 fps camera: local's 160 ms makes frames wait


def feed(policy: AdaptivePolicy, rate_bps: float, start_ms: float, seconds: float) -> list[str]:
    """Frames every 100 ms whose offloads take what ``rate_bps`` allows; returns the choices."""
    choices, t = [], start_ms
    while t < start_ms + seconds * 1000:
        name = policy.choose(t)
        choices.append(name)
        offloaded = name if name != "local" else policy.probe(t)  # the frame itself, or a copy probing the link
        if offloaded is not None:
            mode = policy.modes[offloaded]
            sent = t + mode.device_ms
            if rate_bps > 0:
                result = sent + mode.uplink_bytes * 8 / rate_bps * 1000 + mode.edge_ms + 40
                policy.observe(offloaded, sent, result, mode.edge_ms)
            else:
                policy.observe_loss(t + 2000)
        t += 100
    return choices


def test_picks_jpeg_on_a_fast_link_and_split_on_a_slow_one():
    policy = fresh()
    assert feed(policy, 50e6, 0, 3)[-5:] == ["jpeg"] * 5
    assert feed(policy, 1e6, 3000, 1)[-3:] == ["split"] * 3  # reacted within a second


def test_outage_falls_back_to_local_and_probes_back():
    policy = fresh()
    feed(policy, 5e6, 0, 2)
    probes = policy.probes
    during = feed(policy, 0, 2000, 3)
    assert during[-20:] == ["local"] * 20  # within a second of silence every frame is computed locally …
    assert policy.probes - probes >= 1  # … and copies of frames still probe the link (1 s, then 2 s, 4 s …)
    after = feed(policy, 5e6, 5000, 3)
    assert after[-5:] != ["local"] * 5


def test_offloads_only_when_clearly_faster_and_counts_the_age_of_frames():
    policy = fresh()
    local, split = policy.modes["local"], policy.modes["split"]
    assert policy.expected_ms(local) == 160 + 50  # busy longer than a frame period: frames wait half a period
    policy.rate_bps = 2e6
    assert policy.expected_ms(split) == 50 + 2_500 * 8 / 2e6 * 1000 + 30 + 40  # idle between frames: no wait
    split.device_ms = 100  # split: 180 ms expected against local's 210, faster but not by 20 %: not worth the risk
    policy.modes.pop("jpeg")
    assert policy.choose(0.0) == "local"
    split.device_ms = 90  # 170 ms: clearly faster
    assert policy.choose(100.0) == "split"
    assert policy.give_up_ms("split") == 3 * 170  # it waits for a result three times as long as expected


def test_simulated_auto_beats_fixed_modes_on_a_link_with_an_outage():
    costs = {m.name: ModeCost(m.name, m.device_ms, int(m.uplink_bytes), m.edge_ms, 300) for m in MODES}

    def uplink():
        return Direction(WithOutages(ConstantRate(2e6), [(10_000.0, 16_000.0)]), delay_ms=20)

    fixed_runs = {n: simulate(fixed(c), 300, 10, uplink(), Direction(ConstantRate(20e6), delay_ms=20))
                  for n, c in costs.items()}
    policy = fresh()

    def observe(cost, capture, sent, result):
        if result - capture > 2000:
            policy.observe_loss(capture + 2000)
        else:
            policy.observe(cost.name, sent, result, cost.edge_ms)

    def probe(now):
        name = policy.probe(now)
        return costs[name] if name else None

    auto = simulate(lambda now, full: costs[policy.choose(now, full)], 300, 10, uplink(),
                    Direction(ConstantRate(20e6), delay_ms=20), observe=observe, probe=probe)
    assert len(auto.latencies_ms) + auto.stale == 300
    assert auto.percentile(95) <= min(r.percentile(95) for r in fixed_runs.values())


def test_device_auto_chooses_only_among_the_modes_it_is_given():
    setup = ModelSetup.build("ssdlite_mobilenet_v2_person", None, "s16", None)
    client = DeviceClient(setup, "tcp://127.0.0.1:9", mode="auto", auto_modes=("local", "jpeg"))
    assert set(client.policy.modes) == {"local", "jpeg"} and client.head is None  # no split: no head to run
    with pytest.raises(ValueError, match="must include local"):
        DeviceClient(setup, "tcp://127.0.0.1:9", mode="auto", auto_modes=("jpeg", "split"))
    with pytest.raises(ValueError, match="must include local"):
        DeviceClient(setup, "tcp://127.0.0.1:9", mode="auto", auto_modes=("local", "jpg"))


def test_simulated_rescue_answers_a_frame_stuck_in_an_outage_locally():
    local, jpeg = ModeCost("local", 160.0), ModeCost("jpeg", 5.0, 20_000, 40.0, 300)

    def uplink():
        return Direction(WithOutages(ConstantRate(5e6), [(0.0, 5_000.0)]), delay_ms=20)

    def down():
        return Direction(ConstantRate(20e6), delay_ms=20)

    stuck = simulate(fixed(jpeg), 1, 10, uplink(), down())
    rescued = simulate(fixed(jpeg), 1, 10, uplink(), down(), rescue_after=lambda cost: 300.0, rescue_with=local)
    assert stuck.stale == 1 and stuck.latencies_ms == []  # the outage outlasts the 2 s deadline
    assert rescued.rescued == 1 and rescued.latencies_ms == [5.0 + 300.0 + 160.0]


def test_offloads_that_go_unanswered_raise_the_bar_until_answers_return():
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100)
    borderline = 20_000 * 8 / 0.075  # jpeg expected in 160 ms, local in 210: faster by more than the margin
    policy.rate_bps = borderline
    assert policy.choose(0) == "jpeg"
    policy.observe_loss(1000)  # … but that offload got no answer
    policy.rate_bps = borderline  # even with the rate estimate back where it was …
    assert policy.choose(1100) == "local"  # … 24 % faster is no longer enough
    for t in range(2000, 20000, 100):  # probes, answered at that same rate, restore the trust
        if policy.probe(t):
            policy.observe("jpeg", t, t + 155, 40.0)
        policy.rate_bps = borderline
    assert policy.choose(20000) == "jpeg"
