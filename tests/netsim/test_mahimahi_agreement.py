"""The relay against the real mm-link: recorded runs replayed through a real relay process, and its
backpressure against a sender that offers far more than the link carries."""

import pytest
from splitinf.netsim.linklog import LinkLogError

from splitinf.bench.mahimahi import STREAM_LEVEL, Transfer, compare, load_run, replay
from splitinf.bench.netsim import measure_backpressure
from splitinf.data import data_root


def reference(name: str):
    return load_run(data_root() / "mahimahi-reference" / name)


def test_compare_counts_whole_windows_of_the_common_saturated_interval():
    ref = Transfer(0, 5000, tuple((t, 100) for t in range(100, 5000, 10)))  # from 100 ms, 10 kB/s
    rep = Transfer(50, 4600, tuple((t, 102) for t in range(300, 4600, 10)))  # from 300 ms, 2 % more
    agreement = compare(ref, rep)
    assert agreement.interval_ms == (1300, 4300)  # 1 s after the later first byte; 3 whole windows before 4600
    assert agreement.reference_bytes == 300 * 100 and agreement.ratio == pytest.approx(1.02)
    assert agreement.windows_within(0.03) == 1 and agreement.windows_within(0.01) == 0
    with pytest.raises(ValueError, match="share no whole 1000-ms window"):
        compare(ref, Transfer(0, 1500, ((300.0, 1),)))


def test_a_recorded_run_names_its_sender_trace_and_transfer():
    run = reference("umts-reno")
    assert (run.sender_script.name, run.trace.name) == ("send.py", "TMobile-UMTS-driving.up")
    assert (run.seconds, run.cap_bytes_per_s, run.congestion_control) == (20.0, 5e6, "reno")
    assert 600 < run.transfer.start_ms < 700
    assert run.transfer.end_ms - run.transfer.start_ms == pytest.approx(20000, abs=5)


def test_a_folder_without_a_run_is_refused_with_what_is_missing(tmp_path):
    with pytest.raises(LinkLogError, match="cannot read mm-link log"):
        load_run(tmp_path)


def test_the_relay_delivers_what_mm_link_delivered_on_the_same_trace():
    run = reference("umts-reno")
    agreement = compare(run.transfer, replay(run, seconds=6.0))  # the first 6 s of the 20-s run
    assert agreement.ratio == pytest.approx(1.0, abs=0.01), agreement.as_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["umts-reno", "umts-bbr"])
def test_whole_recorded_runs_agree_where_the_stream_level_relay_did_not(name):
    run = reference(name)
    packets = compare(run.transfer, replay(run))
    stream = compare(run.transfer, replay(run, relay_args=STREAM_LEVEL))
    assert stream.ratio > 1.03  # 1504 payload bytes per opportunity instead of 1448 + 56 of headers
    if name == "umts-reno":
        assert packets.ratio == pytest.approx(1.0, abs=0.01) and packets.windows_within(0.03) >= 0.9
    else:  # BBR's probe-RTT drains under-use mm-link; the relay's loopback sender never drains
        assert 1.0 <= packets.ratio <= 1.02


def test_a_sender_offering_far_more_than_the_link_is_held_back():
    result = measure_backpressure("1mbit", offered_bytes_per_s=5e6, seconds=3.0)
    assert result["peak_held_bytes"] <= result["max_held_bytes"]
    assert result["accepted_bytes"] <= result["delivered_bytes"] + result["max_held_bytes"] + \
        result["kernel_buffer_bytes"] < result["offered_bytes"]
    assert result["relay_rss_growth_mb"] <= 16
