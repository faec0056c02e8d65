"""The adaptive policy: lowest tail latency over a frame and the next, reaction to rate changes and outages,
probing."""

import itertools

import numpy as np
import pytest
from splitinf.head.modes import torch_engine
from splitinf.netsim.channel import Direction
from splitinf.netsim.schedule import ConstantRate, WithOutages

from splitinf.experiments.pipeline_sim import AUTO, ModeCost, simulate
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.policy import MIN_RATE_SAMPLES, AdaptivePolicy, ModeEstimate
from splitinf.runtime.setup import ModelSetup

MODES = [ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0),
         ModeEstimate("split", 50.0, 2_500, 30.0)]


KEYS = itertools.count()  # the device's sequence numbers, for the offloads the tests send


def answer(policy: AdaptivePolicy, name: str, sent_ms: float, result_ms: float, edge_ms: float) -> None:
    """An offload of ``name`` sent at ``sent_ms`` and answered at ``result_ms``."""
    key = next(KEYS)
    policy.sent(key, name, sent_ms, policy.modes[name].uplink_bytes)
    policy.answered(key, result_ms, edge_ms)


def lose(policy: AdaptivePolicy, name: str, sent_ms: float, now_ms: float) -> None:
    """An offload of ``name`` a frame waited on, sent at ``sent_ms``, unanswered at ``now_ms``."""
    key = next(KEYS)
    policy.sent(key, name, sent_ms, policy.modes[name].uplink_bytes)
    policy.lost(key, now_ms)


def fresh() -> AdaptivePolicy:
    return AdaptivePolicy([ModeEstimate(m.name, m.device_ms, m.uplink_bytes, m.edge_ms) for m in MODES],
                          frame_period_ms=100)  # a 10 fps camera: local's 160 ms makes frames wait


def measured(policy: AdaptivePolicy, name: str, rate_bps: float, until_ms: float) -> None:
    """Answers to ``name`` offloads that measure ``rate_bps``, the last at ``until_ms``: enough to forecast from."""
    mode = policy.modes[name]
    for i in range(MIN_RATE_SAMPLES, 0, -1):
        sent = until_ms - 100 * i
        answer(policy, name, sent, sent + mode.uplink_bytes * 8 / rate_bps * 1000 + mode.edge_ms + 40, mode.edge_ms)
    policy.rate_bps = rate_bps


def feed(policy: AdaptivePolicy, rate_bps: float, start_ms: float, seconds: float) -> list[str]:
    """Frames every 100 ms whose offloads take what ``rate_bps`` allows; returns the choices."""
    choices, t = [], start_ms
    while t < start_ms + seconds * 1000:
        name = policy.choose(t)
        choices.append(name)
        offloaded = name if name != "local" else policy.probe(t)  # the frame itself, or a copy probing the link
        if offloaded is not None:
            mode, key = policy.modes[offloaded], next(KEYS)
            sent = t + mode.device_ms if name != "local" else t  # a probe re-sends a payload: no compute
            policy.sent(key, offloaded, sent, mode.uplink_bytes, waited_on=name != "local")
            if rate_bps > 0:
                policy.answered(key, sent + mode.uplink_bytes * 8 / rate_bps * 1000 + mode.edge_ms + 40, mode.edge_ms)
            else:
                policy.lost(key, t + 2000)
        t += 100
    return choices


def test_picks_jpeg_on_a_fast_link_and_split_on_a_slow_one():
    policy = fresh()
    choices = feed(policy, 50e6, 0, 3)
    assert choices[:MIN_RATE_SAMPLES] == ["local"] * MIN_RATE_SAMPLES  # nothing measured yet: local, probing …
    assert choices[-5:] == ["jpeg"] * 5
    assert feed(policy, 1e6, 3000, 1)[-3:] == ["split"] * 3  # reacted within a second


def test_the_link_is_trusted_only_once_measured_enough_and_probed_every_frame_until_then():
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100)
    jpeg = policy.modes["jpeg"]
    answer(policy, "jpeg", 0, 0 + 3.2 + 40 + 40, 40.0)  # one fast answer is no forecast (the link may burst)
    assert policy.tail_ms(jpeg, 100) == float("inf") and policy.choose(100) == "local"
    measured(policy, "jpeg", 50e6, 2000)
    assert policy.tail_ms(jpeg, 2000) == pytest.approx(5 + 3.2 + 80)

    slow = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                          frame_period_ms=100)
    assert set(feed(slow, 0.3e6, 0, 1)) == {"local"} and slow.probes == MIN_RATE_SAMPLES  # a probe every frame …
    feed(slow, 0.3e6, 1000, 3)
    assert slow.probes == MIN_RATE_SAMPLES + 3  # … then one a second


def test_ranks_by_the_tail_so_a_link_that_dips_gets_the_small_payload():
    """A link at 20 Mbit/s that dips to 0.5 Mbit/s one sample in ten: JPEG is faster on average (5 + 8 + 40
    + 40 = 93 ms against split's 50 + 1 + 30 + 40 = 121 ms) but its 95th percentile is 5 + 320 + 80 = 405 ms
    against split's 50 + 40 + 70 = 160 ms."""
    policy = fresh()
    for i in range(200):
        answer(policy, "split", i * 100.0, i * 100.0 + (2_500 * 8 / (0.5e6 if i % 10 == 0 else 20e6) * 1000 + 70), 30)
    policy.rate_bps = 20e6  # the current estimate: a good moment
    assert policy.expected_ms(policy.modes["jpeg"]) < policy.expected_ms(policy.modes["split"])
    assert policy.tail_ms(policy.modes["jpeg"], 20_000) == pytest.approx(5 + 20_000 * 8 / 0.5e6 * 1000 + 80)
    assert policy.tail_ms(policy.modes["split"], 20_000) == pytest.approx(50 + 2_500 * 8 / 0.5e6 * 1000 + 70)
    assert policy.choose(20_000) == "split"


def test_outage_falls_back_to_local_and_probes_back():
    policy = fresh()
    feed(policy, 5e6, 0, 30)  # half a minute of a good link: the window of rates is full of it
    probes = policy.probes
    during = feed(policy, 0, 30_000, 3.2)
    assert during[-20:] == ["local"] * 20  # within a second of silence every frame is computed locally …
    assert policy.probes - probes >= 2  # … and copies of frames still probe the link, every second
    after = feed(policy, 5e6, 33_200, 3)
    assert after[-5:] != ["local"] * 5


def test_an_offload_slower_for_its_own_frame_wins_when_local_would_keep_the_next_frame_waiting():
    """JPEG over 2 Mbit/s takes 5 + 80 + 40 + 40 = 165 ms (181 with the 10 % margin on its network share),
    local 160 ms — but those 160 ms leave the 10 fps camera's next frame 60 ms old when the device gets to it
    (220 ms in all), where the JPEG's 5 ms leave it fresh."""
    policy = fresh()
    policy.modes.pop("split")
    local, jpeg = policy.modes["local"], policy.modes["jpeg"]
    measured(policy, "jpeg", 2e6, 0.0)
    assert policy.tail_ms(local, 0.0) == 160 and policy.tail_ms(jpeg, 0.0) == pytest.approx(165)
    assert [policy.next_age_ms(local, age) for age in (0, 20, 40)] == [60, 80, 0] and policy.next_age_ms(jpeg, 0) == 0
    assert policy.choose(0.0) == "jpeg"
    assert policy.give_up_ms("jpeg") == 3 * 165  # it waits for a result three times as long as expected
    # A frame already 50 ms old: local's 210 ms leave the next frame 10 ms old; its own latency decides.
    assert policy.choose(100.0, age_ms=50.0) == "local"
    slow_camera = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                                 frame_period_ms=200)  # 5 fps: the device is done before the next frame
    measured(slow_camera, "jpeg", 2e6, 0.0)
    assert slow_camera.choose(0.0) == "local"


def test_looks_five_frames_ahead_since_staying_local_costs_a_cycle_of_ages():
    """Split over a slow link: 50 + 90 + 30 + 40 = 210 ms (226 with the margin), every frame fresh. Local: 160
    ms for this frame and 60 + 160 for the next — 220, so one frame ahead local looks better — but staying
    local, frames start 0, 60, 20, 80 and 40 ms old, and the fourth takes 240 ms."""
    def policy(lookahead: int) -> AdaptivePolicy:
        p = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("split", 50.0, 2_500, 30.0)],
                           frame_period_ms=100, lookahead=lookahead)
        measured(p, "split", 2_500 * 8 / 0.09, 0.0)
        return p

    assert policy(5).tail_ms(policy(5).modes["split"], 0.0) == pytest.approx(210)
    assert policy(1).choose(0.0) == "local"
    assert policy(5).choose(0.0) == "split"
    with pytest.raises(ValueError, match="lookahead must be at least 1 frame, got 0"):
        policy(0)


def test_a_full_window_is_waited_for_only_when_an_answer_is_due():
    policy = fresh()
    policy.modes.pop("jpeg")
    measured(policy, "split", 20e6, 0.0)  # split: expected back 50 + 1 + 30 + 40 = 121 ms after it is chosen
    assert policy.choose(0.0) == "split"
    policy.sent(next(KEYS), "split", 50.0, 2_500)  # sent once its head ran: due 1 + 30 + 40 ms later
    assert not policy.slot_due(100.0) and policy.choose(100.0, window_full=True) == "local"
    assert policy.slot_due(121.0) and policy.choose(130.0, window_full=True) == "split"


def test_simulated_auto_beats_fixed_modes_on_a_link_with_an_outage():
    # Device times spread ±10 % as a board's do (constant ones phase-lock a simulated device to the camera).
    costs = {m.name: ModeCost(m.name, m.device_ms, int(m.uplink_bytes), m.edge_ms, 300,
                              tuple(np.linspace(0.9, 1.1, 21) * m.device_ms)) for m in MODES}

    def uplink():
        return Direction(WithOutages(ConstantRate(2e6), [(10_000.0, 16_000.0)]), delay_ms=20)

    fixed_runs = {n: simulate({n: c}, n, 300, 10, uplink(), Direction(ConstantRate(20e6), delay_ms=20))
                  for n, c in costs.items()}
    auto = simulate(costs, AUTO, 300, 10, uplink(), Direction(ConstantRate(20e6), delay_ms=20), policy=fresh())
    assert len(auto.latencies_ms) + auto.stale == len(auto.outcomes) == 300
    assert auto.percentile(95) <= min(r.percentile(95) for r in fixed_runs.values())


def test_device_auto_chooses_only_among_the_modes_it_is_given():
    setup = ModelSetup.build("ssdlite_mobilenet_v2_person", None, "s16", None)
    client = DeviceClient(torch_engine(setup), "tcp://127.0.0.1:9", mode="auto", auto_modes=("local", "jpeg"))
    assert set(client.policy.modes) == {"local", "jpeg"} and set(client.halves) == {"local", "jpeg"}  # no head
    with pytest.raises(ValueError, match="must include local"):
        DeviceClient(torch_engine(setup), "tcp://127.0.0.1:9", mode="auto", auto_modes=("jpeg", "split"))
    with pytest.raises(ValueError, match="must include local"):
        DeviceClient(torch_engine(setup), "tcp://127.0.0.1:9", mode="auto", auto_modes=("local", "jpg"))


def test_simulated_rescue_answers_a_frame_stuck_in_an_outage_locally():
    costs = {"local": ModeCost("local", 160.0), "jpeg": ModeCost("jpeg", 5.0, 20_000, 40.0, 300)}

    def uplink():
        return Direction(WithOutages(ConstantRate(5e6), [(0.0, 5_000.0)]), delay_ms=20)

    def down():
        return Direction(ConstantRate(20e6), delay_ms=20)

    stuck = simulate(costs, "jpeg", 1, 10, uplink(), down())
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100)
    measured(policy, "jpeg", 50e6, -1.0)  # a fast link until now: JPEG (5 + 3.2 + 80 ms) it is
    assert policy.give_up_ms("jpeg") == 300.0  # 3 × 88.2 ms, but never less than 300
    rescued = simulate(costs, AUTO, 1, 10, uplink(), down(), policy=policy)
    assert stuck.stale == 1 and stuck.latencies_ms == []  # the outage outlasts the 2 s deadline
    assert rescued.choices == ["jpeg"] and rescued.rescued == 1
    assert rescued.latencies_ms == [pytest.approx(5.0 + 300.0 + 160.0)]


def test_offloads_that_go_unanswered_raise_the_bar_until_answers_return():
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100)
    # JPEG at 1.6 Mbit/s: 5 + (100 + 80) × 1.1 = 203 ms, under local's 160 + the next frame's 60 ms wait
    measured(policy, "jpeg", 1.6e6, 0.0)
    assert policy.choose(0) == "jpeg"
    lose(policy, "jpeg", 5, 1000)  # … but that offload got no answer
    policy.rate_samples.clear()  # (forget the loss as a rate, to see the distrust alone)
    policy.rate_samples.extend((1100.0, 1.6e6) for _ in range(MIN_RATE_SAMPLES))  # even with the link …
    policy.rate_bps = 1.6e6  # … measured where it was
    assert policy.choose(1100) == "local"  # … 5 + 180 × (1.1 + 0.3) = 257 ms is no longer enough
    for t in range(2000, 20000, 100):  # probes, answered at that same rate, restore the trust
        if policy.probe(t):
            answer(policy, "jpeg", t, t + 180, 40.0)
        policy.rate_bps = 1.6e6
    assert policy.choose(20000) == "jpeg"


def test_a_loss_stays_in_the_tail_until_answers_outnumber_it():
    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("jpeg", 5.0, 20_000, 40.0)],
                            frame_period_ms=100, distrust=0)
    measured(policy, "jpeg", 20e6, 0)
    assert policy.choose(0) == "jpeg" and policy.choose(100) == "jpeg"
    lose(policy, "jpeg", 5, 2000)  # two frames waited on them in vain: two rates of zero, which never arrive
    lose(policy, "jpeg", 105, 2100)
    policy.rate_bps = 20e6
    assert policy.tail_ms(policy.modes["jpeg"], 2100) == float("inf") and policy.choose(2100) == "local"

    def answers(count: int, start_ms: float) -> None:
        for t in range(int(start_ms), int(start_ms) + 100 * count, 100):
            answer(policy, "jpeg", t, t + 100, 40.0)

    answers(30 - MIN_RATE_SAMPLES, 2200)  # 30 answers (+ the current rate) to 2 losses: in the 95th percentile
    assert policy.choose(5000) == "local"
    answers(10, 5000)  # 40 to 2: beyond it
    assert policy.choose(6000) == "jpeg"
    measured(policy, "jpeg", 20e6, 70_000)  # a minute on, the losses are forgotten
    assert policy.tail_ms(policy.modes["jpeg"], 70_000) == pytest.approx(5 + 8 + 80)
