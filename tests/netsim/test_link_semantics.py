"""mm-link's semantics, pinned with tiny hand-written traces."""

import random

import pytest
from splitinf.netsim.channel import Direction
from splitinf.netsim.impairments import Bernoulli, GilbertElliott, parse_loss
from splitinf.netsim.link import LinkQueue, QueueLimit
from splitinf.netsim.packets import Packetization
from splitinf.netsim.schedule import PACKET_SIZE, ConstantRate, TraceSchedule, WithOutages, parse_rate
from splitinf.netsim.simulate import Exchange, deliver, simulate_exchanges
from splitinf.netsim.trace import TraceError, parse_trace

FULL = Packetization().mss  # payload of a segment that fills one opportunity with its headers


def link(times, limit=None) -> LinkQueue:
    return LinkQueue(TraceSchedule(times), limit)


def test_unused_opportunities_are_lost():
    queue = link(list(range(1, 11)))
    assert queue.enqueue(1000, now=5.5) == 6  # opportunities 1..5 went by with nobody queued


def test_a_packet_cannot_use_the_opportunity_of_its_arrival_millisecond():
    queue = link([5, 10])
    assert queue.enqueue(100, now=5) == 10
    assert link([5, 10]).enqueue(100, now=4.999) == 5


def test_one_packet_spans_opportunities_and_small_packets_share_one():
    queue = link([10, 20, 30])
    assert queue.enqueue(1000, now=0) == 10
    assert queue.enqueue(1000, now=1) == 20  # 504 bytes left at 10, the other 496 at 20
    assert queue.enqueue(1008, now=2) == 20  # exactly fills the rest of 20
    assert queue.enqueue(1, now=3) == 30
    shared = link([10, 20])
    assert [shared.enqueue(100, now=0) for _ in range(16)] == [10] * 15 + [20]


def test_leftover_of_a_started_opportunity_is_lost_once_it_passed():
    queue = link([10, 20, 30])
    assert queue.enqueue(100, now=0) == 10  # 1404 bytes of 10 left, but nobody else is queued at 10
    assert queue.enqueue(100, now=15) == 20


def test_trace_loops_with_its_last_timestamp_as_period():
    schedule = TraceSchedule([3, 7])
    assert [schedule.time(i) for i in range(6)] == [3, 7, 10, 14, 17, 21]
    assert link([3, 7]).enqueue(10, now=8) == 10
    assert link([3, 7]).enqueue(10, now=7000.5) == 7003
    trace_from_zero = TraceSchedule([0, 0, 5])  # two opportunities at 0, one at 5; period 5
    assert [trace_from_zero.time(i) for i in range(6)] == [0, 0, 5, 5, 5, 10]
    assert trace_from_zero.index_after(5) == 5 and trace_from_zero.index_at_or_after(5) == 2


def test_drop_tail_queue_limit_in_packets_and_bytes():
    queue = link([10, 20, 30, 40], QueueLimit(packets=2))
    assert [queue.enqueue(PACKET_SIZE, now=0) for _ in range(3)] == [10, 20, None]
    assert queue.counters.drops == 1 and queue.counters.max_queue_packets == 2
    assert queue.enqueue(PACKET_SIZE, now=10) == 30  # the first packet started at 10: room again
    by_bytes = link([10, 20, 30], QueueLimit(bytes=2000))
    assert [by_bytes.enqueue(1000, now=0) for _ in range(3)] == [10, 20, None]


def test_stream_mode_waits_for_room_instead_of_dropping():
    stream = Direction(TraceSchedule([10, 20, 30, 40]), limit=QueueLimit(packets=2))
    assert [stream.send_segment(FULL, 0) for _ in range(3)] == [10, 20, 30]
    assert stream.counters.stalls == 1 and stream.counters.link.drops == 0
    datagram = Direction(TraceSchedule([10, 20, 30, 40]), limit=QueueLimit(packets=2), mode="datagram")
    assert [datagram.send_segment(FULL, 0) for _ in range(3)] == [10, 20, None]


def test_constant_rate_of_one_mtu_per_millisecond():
    rate = PACKET_SIZE * 8 * 1000  # 12.032 Mbit/s
    queue = LinkQueue(ConstantRate(rate))
    assert [queue.enqueue(PACKET_SIZE, now=0) for _ in range(3)] == pytest.approx([1, 2, 3])
    assert ConstantRate(rate).capacity_bytes(0, 1000) == 1000 * PACKET_SIZE


def test_outages_remove_opportunities():
    schedule = WithOutages(ConstantRate(PACKET_SIZE * 8 * 1000), [(2.5, 10.0)])
    queue = LinkQueue(schedule)
    assert [queue.enqueue(PACKET_SIZE, 0) for _ in range(4)] == pytest.approx([1, 2, 10, 11])
    assert schedule.capacity_bytes(0, 20) == (20 - 7) * PACKET_SIZE


def test_delay_and_jitter_never_reorder():
    direction = Direction(ConstantRate(PACKET_SIZE * 8 * 1000), delay_ms=20, jitter_ms=15, seed=3)
    deliveries = [direction.send_segment(FULL, 0) for _ in range(200)]
    assert deliveries == sorted(deliveries)
    assert min(deliveries) >= 1 + 5 and max(d - i - 1 for i, d in enumerate(deliveries)) > 25
    plain = Direction(TraceSchedule([10]), delay_ms=20)
    assert plain.send_segment(100, 0) == 30


def test_stream_loss_costs_capacity_and_one_round_trip():
    direction = Direction(ConstantRate(PACKET_SIZE * 8 * 1000), delay_ms=10, loss=Bernoulli(0.5, random.Random(1)))
    deliveries = [direction.send_segment(FULL, 0) for _ in range(100)]
    assert direction.counters.retransmissions == direction.counters.lost > 20
    assert direction.queue.counters.packets == 100 + direction.counters.retransmissions
    assert deliveries == sorted(deliveries) and None not in deliveries
    datagram = Direction(None, mode="datagram", loss=Bernoulli(0.5, random.Random(1)))
    assert sum(datagram.send_segment(10, 0) is None for _ in range(1000)) == pytest.approx(500, abs=60)


def test_gilbert_elliott_loss_is_bursty_with_the_stationary_mean():
    model = GilbertElliott(0.01, 0.2, random.Random(7))
    outcomes = [model.lost() for _ in range(200_000)]
    assert sum(outcomes) / len(outcomes) == pytest.approx(model.stationary_loss(), rel=0.1)
    bursts = sum(1 for a, b in zip(outcomes, outcomes[1:]) if b and not a)
    assert sum(outcomes) / bursts > 3  # losses come in runs (mean run 1/r = 5)


@pytest.mark.parametrize(("text", "message"), [
    ("1\n2\nx\n", "line 3: 'x' is not an integer"),
    ("5\n3\n", "line 2: timestamp 3 is smaller than the previous 5"),
    ("", "empty trace"),
    ("1\n\n2\n", "line 2: empty line"),
    ("0\n0\n", "nonzero time"),
])
def test_malformed_traces_are_refused_with_the_line(text, message):
    with pytest.raises(TraceError, match=message):
        parse_trace(text, "t.up")


def test_rates_and_losses_parse_and_bad_ones_are_refused():
    assert parse_rate("1mbit") == 1e6 and parse_rate("500kbps") == 5e5 and parse_rate("20") == 20e6
    with pytest.raises(ValueError, match="cannot read rate 'fast'"):
        parse_rate("fast")
    assert isinstance(parse_loss("ge:0.01,0.3", random.Random()), GilbertElliott)
    with pytest.raises(ValueError, match="cannot read loss"):
        parse_loss("ge:1", random.Random())
    with pytest.raises(ValueError, match="queue limit"):
        QueueLimit.parse("frames=3")


def test_a_full_segment_fills_one_opportunity_exactly():
    up = Direction(TraceSchedule([10, 20, 30]))
    assert [up.send_segment(FULL, 0) for _ in range(2)] == [10, 20]  # 1448 + 56 = 1504: nothing left at 10
    assert up.counters.link.bytes == 2 * 1504 and up.counters.delivered_bytes == 2 * 1448
    assert up.send_segment(1, 0) == 30


def test_a_small_message_costs_its_bytes_plus_one_packets_headers():
    up = Direction(TraceSchedule([10, 20]))
    assert up.send_message(100, 0) == 10
    assert (up.counters.link.bytes, up.counters.link.packets, up.counters.delivered_bytes) == (156, 1, 100)
    # 9 more share the opportunity: 10 × 156 = 1560 > 1504, so the tenth packet spans into the next one
    assert [up.send_message(100, 0) for _ in range(9)] == [10] * 8 + [20]


def test_a_message_over_one_mss_is_cut_into_full_segments_and_the_rest():
    up = Direction(TraceSchedule([10, 20, 30, 40]), delay_ms=5)
    assert up.send_message(3000, 0) == 35  # 1504 @10, 1504 @20, 104 + 56 @30
    assert (up.counters.link.packets, up.counters.link.bytes) == (3, 3000 + 3 * 56)
    assert Packetization().segments(3000) == [1448, 1448, 104]


def test_packetization_is_adjustable_and_checked():
    no_timestamps = Packetization(ip_tcp_header=40, tun_header=0)
    assert (no_timestamps.mss, no_timestamps.wire_size(100), no_timestamps.payload_share()) == (1460, 140, 1460 / 1500)
    up = Direction(TraceSchedule([10, 20]), packets=no_timestamps)
    assert up.send_message(1460 + 44, 0) == 20  # packets of 1500 and 84 B: 4 B of the second fit at 10, 80 at 20
    with pytest.raises(ValueError, match="must fit one delivery opportunity"):
        Packetization(mtu=1520)
    with pytest.raises(ValueError, match="1..1448 payload bytes"):
        Packetization().wire_size(1449)


def test_messages_and_exchanges_round_trip():
    up = Direction(TraceSchedule([10, 20, 30, 40]), delay_ms=5)
    assert deliver(up, [(0, 3000), (1, 100)]) == [35, 35]  # the 100 bytes (156) share 30 with the 160 before
    uplink = Direction(ConstantRate(PACKET_SIZE * 8 * 1000))
    downlink = Direction(ConstantRate(PACKET_SIZE * 8 * 1000), delay_ms=2)
    times = simulate_exchanges(uplink, downlink, [Exchange(0, 3000, 10, 100), Exchange(0.5, 100, 10, 100)])
    # three packets at 1, 2, 3 ms; the edge answers at 13; the answer leaves at 14 and arrives at 16
    assert times[0].request_arrival_ms == pytest.approx(3) and times[0].response_arrival_ms == pytest.approx(16)
    # the second request shares the opportunity at 3, waits for the edge until 13, answers at 23, arrives at 26
    assert times[1].request_arrival_ms == pytest.approx(3) and times[1].response_arrival_ms == pytest.approx(26)


def test_netsim_runs_without_torch():
    import subprocess
    import sys

    code = ("import sys, splitinf.netsim.relay, splitinf.netsim.cli, splitinf.netsim.simulate;"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"
