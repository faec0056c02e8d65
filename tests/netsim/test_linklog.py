"""mm-link's logs read as the recorded runs need: the title, the command, the link's time zero."""

import pytest
from splitinf.netsim.linklog import LinkLogError, load_link_log, parse_link_log

from splitinf.data import data_root

LOG = """# mahimahi mm-link (Uplink) [TMobile-UMTS-driving.up] > up.log
# command line: 'mm-link' '--uplink-log=up.log' 'a.up' 'a.down' '--' '/usr/bin/python3' 'send.py' '10.0.0.1' '9' \
'20' '5e6' 'out.json' 'reno'
# queue: infinite
# init timestamp: 1000000
# base timestamp: 35
46 + 80
679 # 1504
679 - 80 633
"""


def test_a_log_gives_the_trace_the_command_and_the_links_time_zero():
    log = parse_link_log(LOG)
    assert (log.direction, log.trace, log.queue) == ("Uplink", "TMobile-UMTS-driving.up", "infinite")
    assert log.program() == ("/usr/bin/python3", "send.py", "10.0.0.1", "9", "20", "5e6", "out.json", "reno")
    assert log.zero_wall_ms == 1_000_035 and log.link_ms(1000.5) == pytest.approx(465)
    assert (log.opportunities, log.departed_bytes) == (1, 80)


@pytest.mark.parametrize(("text", "message"), [
    ("# something else\n", "not an mm-link log"),
    (LOG.replace("# base timestamp: 35\n", ""), "missing base timestamp"),
    (LOG + "oops\n", "line 9: 'oops' is not an mm-link log event"),
    (LOG.replace("1000000", "soon"), "must be numbers of ms"),
])
def test_what_is_not_an_mm_link_log_is_refused_with_why(text, message):
    with pytest.raises(LinkLogError, match=message):
        parse_link_log(text, "up.log")


def test_the_recorded_runs_logs_read_and_count_every_opportunity():
    log = load_link_log(data_root() / "mahimahi-reference" / "umts-reno" / "uplink.log")
    assert log.trace == "TMobile-UMTS-driving.up" and log.program()[1] == "send.py"
    # every opportunity carried a packet once the sender was going: departures ≈ opportunities × 1504
    assert 0.95 < log.departed_bytes / (log.opportunities * 1504) <= 1.0
