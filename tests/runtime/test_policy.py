"""The adaptive policy: lowest tail latency, reaction to rate changes and outages, probing."""

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


def test_ranks_by_the_tail_so_a_link_that_dips_gets_the_small_payload():
    """A link at 20 Mbit/s that dips to 0.5 Mbit/s one sample in ten: JPEG is faster on average (5 + 8 + 40
    + 40 = 93 ms against split's 50 + 1 + 30 + 40 = 121 ms) but its 95th percentile is 5 + 320 + 80 = 405 ms
    against split's 50 + 40 + 70 = 160 ms."""
    policy = fresh()
    for i in range(200):
        policy.observe("split", i * 100.0, i * 100.0 + (2_500 * 8 / (0.5e6 if i % 10 == 0 else 20e6) * 1000 + 70), 30)
    policy.rate_bps = 20e6  # the current estimate: a good moment
    assert policy.expected_ms(policy.modes["jpeg"]) < policy.expected_ms(policy.modes["split"])
    assert policy.tail_ms(policy.modes["jpeg"], 20_000) == pytest.approx(5 + 20_000 * 8 / 0.5e6 * 1000 + 80)
    assert policy.tail_ms(policy.modes["split"], 20_000) == pytest.approx(50 + 2_500 * 8 / 0.5e6 * 1000 + 70)
    assert policy.choose(20_000) == "split"


def test_outage_falls_back_to_local_and_probes_back():
    policy = fresh()
    feed(policy, 5e6, 0, 30)  # half a minute of a good link: the window of rates is full of it
    probes = policy.probes
    during = feed(policy, 0, 30_000, 3)
    assert during[-20:] == ["local"] * 20  # within a second of silence every frame is computed locally …
    assert policy.probes - probes >= 2  # … and copies of frames still probe the link, every second
    after = feed(policy, 5e6, 33_000, 3)
    assert after[-5:] != ["local"] * 5


def test_offloads_only_when_the_tail_is_clearly_shorter_and_counts_the_age_of_frames():
    policy = fresh()
    local, split = policy.modes["local"], policy.modes["split"]
    assert policy.expected_ms(local) == 160 + 50  # busy longer than a frame period: frames wait half a period
    assert policy.tail_ms(local, 0) == pytest.approx(160 + 95, abs=3)  # … and up to a whole period in the tail
    policy.rate_bps = 2e6
    assert policy.expected_ms(split) == 50 + 2_500 * 8 / 2e6 * 1000 + 30 + 40  # idle between frames: no wait
    policy.modes.pop("jpeg")
    split.device_samples_ms.extend([140.0] * 10)  # 140 + 10 + 30 + 40 = 220 ms: shorter than local's 255 ms,
    assert policy.choose(0.0) == "local"  # but not by the 20 % margin: not worth the link's risk
    split.device_samples_ms.extend([80.0] * 64)  # 160 ms: clearly shorter
    split.device_ms = 80.0
    assert policy.choose(100.0) == "split"
    assert policy.give_up_ms("split") == 3 * 160  # it waits for a result three times as long as expected


def test_a_full_window_is_waited_for_only_when_an_answer_is_due():
    policy = fresh()
    policy.modes.pop("jpeg")
    policy.rate_bps = 20e6  # split: expected back 50 + 1 + 30 + 40 = 121 ms after it is chosen
    assert policy.choose(0.0) == "split"
    assert not policy.slot_due(100.0) and policy.choose(100.0, window_full=True) == "local"
    assert policy.slot_due(121.0) and policy.choose(130.0, window_full=True) == "split"


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
                    Direction(ConstantRate(20e6), delay_ms=20), observe=observe, probe=probe,
                    rescue_after=lambda cost: policy.give_up_ms(cost.name), rescue_with=costs["local"])
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
    borderline = 20_000 * 8 / 0.111  # jpeg's tail 5 + 111 + 40 + 40 = 196 ms, local's 255: 30 % shorter
    policy.rate_bps = borderline
    assert policy.choose(0) == "jpeg"
    policy.observe_loss(1000)  # … but that offload got no answer
    policy.rate_samples.clear()  # (forget the loss as a rate, to see the distrust alone)
    policy.rate_bps = borderline  # even with the rate estimate back where it was …
    assert policy.choose(1100) == "local"  # … 30 % shorter is no longer enough
    for t in range(2000, 20000, 100):  # probes, answered at that same rate, restore the trust
        if policy.probe(t):
            policy.observe("jpeg", t, t + 191, 40.0)
        policy.rate_bps = borderline
    assert policy.choose(20000) == "jpeg"


def test_a_loss_stays_in_the_tail_until_answers_outnumber_it():
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100, distrust=0)
    policy.rate_bps = 20e6
    assert policy.choose(0) == "jpeg"
    policy.observe_loss(50)  # a frame waited on it in vain: a rate of zero, one sample in two never arrives
    policy.observe("jpeg", 0, 100, 40.0)
    policy.rate_bps = 20e6
    assert policy.tail_ms(policy.modes["jpeg"], 100) == float("inf") and policy.choose(100) == "local"
    for t in range(200, 4000, 100):  # 38 answers: the loss is now beyond the 95th percentile
        policy.observe("jpeg", t, t + 100, 40.0)
    assert policy.choose(4000) == "jpeg"
    assert policy.tail_ms(policy.modes["jpeg"], 70_000) == pytest.approx(5 + 20 + 80)  # a minute on: forgotten
