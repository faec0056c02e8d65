"""One device core: the real client (threads, a real socket, the real split head) and the discrete-event
simulator drive the same session, so one scripted sequence of events gives both the same outcome for every
frame. And the session alone, event by event on a virtual clock."""

from __future__ import annotations

from splitinf.head.modes import torch_engine
from splitinf.netsim.channel import Direction
from splitinf.netsim.schedule import ConstantRate

from splitinf.experiments.pipeline_sim import ModeCost, simulate
from splitinf.protocol import Error, Heartbeat, Payload, Result, Welcome, decode, encode
from splitinf.runtime.device import DeviceClient
from splitinf.runtime.session import REPLACED, DeviceSession, Send
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import default_bottleneck

from .conftest import VIDEO
from .scripted_edge import ScriptedEdge

FRAMES, FPS, DEADLINE_MS = 12, 5.0, 800.0
PAYLOAD = Payload("split", ((1, 1), (1, 1), (1, 1)), "c", b"x")


def script(seq: int) -> str:
    """Frame by frame: a result, a refused payload, a result, no answer at all; and again."""
    return ("result", "payload", "result", "silence")[seq % 4]


def test_the_real_client_and_the_simulator_give_every_frame_the_same_outcome():
    setup = ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))
    outcomes = {}
    with ScriptedEdge(setup.fingerprint, script) as edge:
        client = DeviceClient(torch_engine(setup), edge.address, mode="split", deadline_ms=DEADLINE_MS,
                              on_outcome=lambda outcome, _: outcomes.setdefault(outcome.seq, outcome))
        real = client.run(FrameSource(VIDEO, fps=FPS, start=700), FRAMES)
    link = Direction(ConstantRate(50e6), delay_ms=1)
    cost = ModeCost("split", 40.0, 2_600, 5.0, 100)
    simulated = simulate({"split": cost}, "split", FRAMES, FPS, link, Direction(ConstantRate(50e6), delay_ms=1),
                         deadline_ms=DEADLINE_MS, edge=script)
    expected = {"result": ("edge", None), "payload": ("failed", "edge error payload"),
                "silence": ("stale", "deadline passed")}
    assert {s: (o.outcome, o.reason) for s, o in outcomes.items()} == {s: expected[script(s)] for s in range(FRAMES)}
    assert {o.seq: (o.outcome, o.reason) for o in simulated.outcomes} == {s: expected[script(s)]
                                                                          for s in range(FRAMES)}
    assert real["accounted"] == real["frames"] == FRAMES and real["counts"]["edge"] == 6


def test_the_session_on_a_virtual_clock():
    """No threads, no socket, no clock: events in, actions out."""
    session = DeviceSession(mode="split", fingerprint="f", config={}, window=1, deadline_ms=500.0)
    [hello] = session.start(0.0)
    assert isinstance(hello, Send) and hello.seq is None and session.next_job(5.0) == (None, [])
    session.received(encode(Welcome("edge", "f", 1, heartbeat_ms=100)), 1.0)
    assert session.connected and session.heartbeat_ms == 100
    assert session.captured(0, 10.0) == []
    job, _ = session.next_job(10.0)
    assert (job.seq, job.mode) == (0, "split")
    assert session.captured(1, 20.0) == []  # waits in the slot while the device computes frame 0 …
    [replaced] = session.captured(2, 30.0)  # … and a newer frame takes its place
    assert (replaced.seq, replaced.outcome, replaced.reason) == (1, "stale", REPLACED)
    [send] = session.offloaded(job, 50.0, PAYLOAD, {"head": 40.0})
    assert send.seq == 0 and decode(send.frames).budget_ms == 460.0  # 500 ms from capture, 40 of them gone
    assert session.next_job(55.0) == (None, [])  # the window (1) is full: frame 2 waits
    [heartbeat] = session.tick(150.0)  # nothing sent for a period
    assert decode(heartbeat.frames) == Heartbeat()
    [answered] = session.received(encode(Result(0, 0, b"", b"", b"", {"queue": 1.0, "decode": 1.0, "tail": 3.0})),
                                  200.0)
    assert (answered.outcome, answered.latency_ms, answered.stages["wire"]) == ("edge", 190.0, 145.0)
    job, _ = session.next_job(200.0)
    assert job.seq == 2 and session.filtered(job, 230.0, {"prefilter": 1.0})[0].outcome == "filtered"
    session.source_finished()
    summary = session.summary(230.0)
    assert session.done() and summary["accounted"] == summary["frames"] == 3
    assert summary["counts"] == {"edge": 1, "local": 0, "filtered": 1, "stale": 1, "failed": 0}


def test_an_edge_whose_compute_is_unavailable_is_treated_as_unreachable():
    """ERROR unavailable (the edge's Ray tail is gone): back off from offloading, and answer the frame locally
    where the device may (else it fails, naming why) — as for an edge it cannot reach."""
    for fallback, outcome in ((True, None), (False, "failed")):
        session = DeviceSession(mode="split", fingerprint="f", config={}, window=1, deadline_ms=500.0,
                                fallback_local=fallback)
        session.start(0.0)
        session.received(encode(Welcome("edge", "f", 1, heartbeat_ms=100)), 1.0)
        session.captured(0, 10.0)
        job, _ = session.next_job(10.0)
        session.offloaded(job, 20.0, PAYLOAD, {})
        actions = session.received(encode(Error("unavailable", "the edge's Ray tail failed twice", 0)), 30.0)
        if outcome is None:  # rescued: the device computes it locally next
            assert actions == [] and session.next_job(31.0)[0].mode == "local"
        else:
            [failed] = actions
            assert (failed.outcome, failed.reason) == ("failed", "edge unavailable")
        assert session.pause_until_ms > 30.0 and session.overloaded == 0
