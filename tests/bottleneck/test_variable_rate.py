"""A variable-rate bottleneck (gain vectors and a density per rate, after Cui et al. 2021): one encoder, one
decoder and one tail for every rate; the rate index travels in the stream; checkpoints round-trip."""

import pytest
import torch
from splitinf.bottleneck import CodecError, load_for
from splitinf.bottleneck.bitstream import pack, unpack
from splitinf.bottleneck.layers import accuracy_drops
from splitinf.head import Head

from splitinf.experiments.costs import within_budget
from splitinf.experiments.pipeline_sim import ModeCost
from splitinf.models import build_detector
from splitinf.training.distill import variable_rate
from splitinf.weights.checkpoints import default_bottleneck, record_metadata

TARGETS = [1.1, 2.7, 5.6]


@pytest.fixture(scope="module")
def detector():
    return build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")


@pytest.fixture(scope="module")
def shipped(detector):
    return load_for(default_bottleneck(), detector)


@pytest.fixture(scope="module")
def varying(detector, shipped):
    bottleneck = variable_rate(shipped, detector, TARGETS, own_kb=2.7).eval()
    bottleneck.update_tables()
    return bottleneck


@pytest.fixture(scope="module")
def latent(detector, shipped, coco_val_images):
    with torch.inference_mode():
        features, _ = Head(detector, bottleneck=shipped)(coco_val_images[:1])
    return features[0]


def test_the_rate_nearest_the_start_is_the_single_rate_checkpoint_bit_for_bit(varying, shipped, latent):
    assert varying.config.rates == 3 and varying.config.default_rate == 1  # 2.7 KB: the shipped one's
    single, vr = shipped.codec().compress(latent), varying.codec(1).compress(latent)
    assert unpack(vr)[1][0] == 1 and unpack(vr)[1][1:] == unpack(single)[1]  # rate byte, then the same words
    assert torch.equal(varying.codec(0).decompress(vr), shipped.codec().decompress(single))


def test_higher_rates_send_more_and_any_rate_decodes_with_one_codec(varying, latent):
    edge = varying.codec(0)
    streams = [varying.codec(r).compress(latent) for r in range(3)]
    assert len(streams[0]) < len(streams[1]) < len(streams[2])
    errors = [float((edge.decompress(s) - latent).abs().mean()) for s in streams]
    assert errors[0] > errors[1] > errors[2]  # finer rounding, closer features, on the one decoder's scale


def test_a_variable_rate_checkpoint_round_trips(varying, detector, latent, tmp_path):
    path = tmp_path / "vr.pt"
    varying.save(path, metadata={"rate_targets_kb": TARGETS})
    loaded = load_for(path, detector)
    assert loaded.fingerprint() == varying.fingerprint() and loaded.config == varying.config
    assert loaded.codec(2).compress(latent) == varying.codec(2).compress(latent)


def test_a_stream_at_a_rate_the_bottleneck_lacks_is_named(varying, latent):
    with pytest.raises(ValueError, match="rate 3 is not one of this bottleneck's rates 0..2"):
        varying.codec(3)
    data = varying.codec(2).compress(latent)
    header, payload = unpack(data)
    forged = pack(header.codec, header.shape, header.fingerprint, bytes([7]) + payload[1:])  # a valid CRC
    with pytest.raises(CodecError, match="bitstream at rate 7, this bottleneck has rates 0..2"):
        varying.codec(0).decompress(forged)
    damaged = data[:15] + bytes([1]) + data[16:]  # the rate index (first byte after the header) flipped in transit
    with pytest.raises(CodecError, match="fails its CRC-32"):
        varying.codec(0).decompress(damaged)


def test_the_accuracy_budget_keeps_the_operating_points_recorded_within_it(varying, tmp_path):
    """--max-ap-drop reads what splitinf bench rate --record wrote into the checkpoint's metadata; points with
    no recorded AP are left out of a budget, and without any record every mode stays."""
    path = tmp_path / "vr.pt"
    varying.save(path)
    costs = {name: ModeCost(name, 10.0, 1000 * i) for i, name in
             enumerate(["local", "jpeg", "split:vr@0", "split:vr@1", "split:vr@2", "split:other"])}
    assert accuracy_drops([str(path)]) is None and within_budget(costs, None, 1.0) == (costs, [])
    record_metadata(path, evaluation={"images": 482, "teacher_ap": 0.19, "points": [
        {"rate": 0, "ap": 0.17, "bytes": 1200.0}, {"rate": 1, "ap": 0.183, "bytes": 2700.0},
        {"rate": 2, "ap": 0.187, "bytes": 5600.0}], "jpeg": [{"quality": 90, "resolution": "input", "ap": 0.186,
                                                            "bytes": 29000.0}]})
    drops = accuracy_drops([str(path)])
    assert drops == pytest.approx({"local": 0.0, "jpeg": 0.4, "split:vr@0": 2.0, "split:vr@1": 0.7,
                                   "split:vr@2": 0.3})
    kept, left_out = within_budget(costs, drops, 1.0)
    assert list(kept) == ["local", "jpeg", "split:vr@1", "split:vr@2"] and left_out == ["split:vr@0", "split:other"]
    assert list(within_budget(costs, drops, 2.5)[0]) == ["local", "jpeg", "split:vr@0", "split:vr@1", "split:vr@2"]
    assert load_for(path, build_detector("ssdlite_mobilenet_v2_person")).fingerprint() == varying.fingerprint()


def test_the_recorded_train_command_parses_back_to_the_same_options():
    """A checkpoint's metadata holds the command that made it: lists and switches must read back as given."""
    import argparse
    import shlex

    from splitinf.training.distill import add_arguments, command_line

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--init", "person_s16t7_c32_k27_gpu.pt", "--rate-targets", "0.5,1.2,2.7",
                              "--freeze-gains", "--out", "vr.pt"])
    again = parser.parse_args(shlex.split(command_line(args))[2:])
    assert vars(again) == vars(args) and "--freeze-gains --" in command_line(args)
