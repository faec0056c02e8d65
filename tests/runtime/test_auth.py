"""CurveZMQ: the edge serves only the device keys it lists. A valid key it does not list and a wrong server
key are both refused, counted on the edge, and told to the device in a line that names authentication and the
options to check."""

from __future__ import annotations

import pytest
from splitinf.head.modes import torch_engine

from splitinf.runtime.device import DeviceClient
from splitinf.runtime.setup import DEFAULT_MODEL, ModelSetup
from splitinf.runtime.sources import FrameSource
from splitinf.runtime.transport import generate_keys

from .conftest import FAST_MODEL, VIDEO


@pytest.fixture(scope="module")
def setup() -> ModelSetup:
    return ModelSetup.build(DEFAULT_MODEL, None, "s16", None)


def device(setup: ModelSetup, address: str, key, server_key) -> DeviceClient:
    return DeviceClient(torch_engine(setup), address, key=str(key), server_key=str(server_key), connect_timeout_s=3.0)


def test_only_listed_keys_are_served_and_refusals_are_counted_and_explained(edge_factory, setup, tmp_path):
    keys, other = tmp_path / "keys", tmp_path / "elsewhere"
    generate_keys(keys, ["cam1"])
    generate_keys(other, ["stranger"])  # a valid key pair this edge never listed, and another edge's keys
    edge = edge_factory([*FAST_MODEL, "--auth", str(keys)])
    summary = device(setup, edge.address, keys / "cam1.key_secret", keys / "edge.key").run(
        FrameSource(VIDEO, fps=5), 4)
    assert summary["counts"]["edge"] >= 2 and summary["accounted"] == 4
    for key, server_key in ((other / "stranger.key_secret", keys / "edge.key"),  # not listed
                            (keys / "cam1.key_secret", other / "edge.key")):  # listed, but a wrong server key
        with pytest.raises(ConnectionError) as refused:
            device(setup, edge.address, key, server_key).run(FrameSource(VIDEO, fps=5), 2)
        assert "--auth" in str(refused.value) and "--key" in str(refused.value) and "--server-key" in str(refused.value)
    counters = edge.stop()
    assert counters["rejected_connections"] >= 2  # the edge saw both, and refused both: it was up all along
    served = counters["departed"]["results"] + sum(d["results"] for d in counters["devices"].values())
    assert served == summary["counts"]["edge"]  # results went to the listed device alone
