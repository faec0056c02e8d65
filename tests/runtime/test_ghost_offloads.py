"""--mode auto keeps one ledger of offloads: every offload the policy counts on is one the device really
sent, and each is settled by its own answer, loss or failure. A frame the prefilter drops after auto chose to
offload it, or one that fails (an ERROR reply, no edge to send it to), must leave no offload behind in the
policy ("a ghost"): a ghost shifts which offload each later answer settles and trips the give-up that
treats the link as down."""

from __future__ import annotations

import time

from splitinf.head import load_prefilter
from splitinf.head.modes import torch_engine

from splitinf.runtime.device import DeviceClient
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.weights.checkpoints import DEFAULT_PREFILTER, default_bottleneck, find_checkpoint

from .conftest import VIDEO
from .scripted_edge import ScriptedEdge

FRAMES = 12


def setup() -> ModelSetup:
    return ModelSetup.build(DEFAULT_MODEL, None, None, str(default_bottleneck()))


def a_learned_fast_link(client: DeviceClient) -> None:
    """The policy as after a while on a fast link: split is the mode to beat (no probing phase)."""
    now_ms = time.perf_counter_ns() / 1e6
    client.policy.rate_samples.extend((now_ms, 50e6) for _ in range(20))
    client.policy.rate_bps = 50e6


def run(client: DeviceClient) -> dict:
    return client.run(FrameSource(VIDEO, fps=10, start=700), FRAMES)


def test_a_split_frame_the_prefilter_drops_leaves_no_offload_behind():
    model = setup()
    never_keeps = load_prefilter(find_checkpoint(DEFAULT_PREFILTER), DEFAULT_MODEL, threshold=0.999999)
    with ScriptedEdge(model.fingerprint) as edge:
        client = DeviceClient(torch_engine(model, never_keeps), edge.address, mode="auto",
                              auto_modes=("local", "split"))
        a_learned_fast_link(client)
        summary = run(client)
    assert summary["counts"]["filtered"] + summary["counts"]["stale"] == FRAMES and not edge.frames
    assert summary["auto_choices"]["split"] > 0  # auto chose to offload, and the head then filtered the frame
    assert len(client.policy.outstanding) == 0


def test_a_frame_failed_by_an_error_reply_leaves_no_offload_behind():
    model = setup()
    with ScriptedEdge(model.fingerprint, lambda seq: "payload" if seq % 3 == 1 else "result") as edge:
        client = DeviceClient(torch_engine(model), edge.address, mode="auto", auto_modes=("local", "split"))
        a_learned_fast_link(client)
        summary = run(client)
    assert summary["counts"]["failed"] >= 1 and summary["reasons"].get("edge error payload", 0) >= 1
    assert summary["accounted"] == FRAMES
    assert len(client.policy.outstanding) == 0


def test_a_frame_the_transport_could_not_send_leaves_no_offload_behind():
    """The session alone: auto chose split, the payload was made, the socket had no edge to hand it to."""
    from splitinf.protocol import Payload, Welcome, encode
    from splitinf.runtime.policy import AdaptivePolicy, ModeEstimate
    from splitinf.runtime.session import DeviceSession

    policy = AdaptivePolicy([ModeEstimate("local", 160.0), ModeEstimate("split", 40.0, 2_500, 30.0)])
    policy.rate_samples.extend((0.0, 50e6) for _ in range(20))
    policy.rate_bps = 50e6
    session = DeviceSession(mode="auto", fingerprint="f", config={}, policy=policy)
    session.start(0.0)
    session.received(encode(Welcome("edge", "f", 1)), 1.0)
    session.captured(0, 10.0)
    job, _ = session.next_job(10.0)
    assert job.mode == "split"
    session.offloaded(job, 50.0, Payload("split", ((1, 1), (1, 1), (1, 1)), "c", b"x"), {"head": 40.0})
    assert list(policy.outstanding) == [0]
    session.send_failed(0, 51.0)  # no edge connected: the frame is answered locally (auto may)
    assert len(policy.outstanding) == 0 and list(session.rescues) == [0]
