"""The range encoder the device runs writes exactly the words ``constriction``'s does: on random streams,
at extreme probabilities, empty and long, and on the shipped bottleneck's real tables and frames."""

import constriction
import numpy as np
import pytest
import torch
from splitinf.bottleneck import load_for
from splitinf.bottleneck.range_coder import RangeEncoder, quantized_cdf
from splitinf.head import Head

from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.models import build_detector
from splitinf.weights.checkpoints import default_bottleneck


def constriction_words(pmfs, planes) -> np.ndarray:
    encoder = constriction.stream.queue.RangeEncoder()
    for pmf, plane in zip(pmfs, planes):
        encoder.encode(np.asarray(plane, np.int32).ravel(), constriction.stream.model.Categorical(pmf, perfect=False))
    return encoder.get_compressed()


def both(pmfs, planes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ours = RangeEncoder(pmfs)
    return constriction_words(pmfs, planes), ours.encode(planes), ours.encode(planes, compiled=False)


@pytest.mark.parametrize("kind", ["uniform-ish", "extreme", "one-hot", "two-symbols"])
def test_random_streams_are_bit_exact(kind):
    rng = np.random.default_rng({"uniform-ish": 0, "extreme": 1, "one-hot": 2, "two-symbols": 3}[kind])
    for _ in range(40):
        pmfs, planes = [], []
        for _ in range(int(rng.integers(1, 5))):
            n = 2 if kind == "two-symbols" else int(rng.integers(2, 80))
            if kind == "uniform-ish":
                pmf = rng.random(n)
            elif kind == "extreme":  # probabilities down to ~1e-30: such symbols keep only their weight of one
                pmf = rng.random(n) ** 30
            else:
                pmf = np.full(n, 1e-12)
                pmf[rng.integers(n)] = 1.0
            pmfs.append(pmf)
            planes.append(rng.integers(0, n, size=int(rng.integers(0, 400))))
        reference, compiled, plain = both(pmfs, planes)
        assert np.array_equal(reference, compiled) and np.array_equal(reference, plain)


def test_an_empty_stream_and_a_long_one():
    pmf = np.array([0.5, 0.3, 0.2])
    assert [len(w) for w in both([pmf], [np.zeros(0, int)])] == [0, 0, 0]  # nothing encoded, nothing written
    rng = np.random.default_rng(4)
    long = rng.choice(3, size=200_000, p=pmf)
    reference, compiled, _ = both([pmf], [long])
    assert len(reference) > 1000 and np.array_equal(reference, compiled)
    # the least probable symbol, over and over: the carry ("inverted") path is taken
    reference, compiled, plain = both([np.array([1 - 1e-9, 1e-9])], [np.ones(5_000, int)])
    assert np.array_equal(reference, compiled) and np.array_equal(reference, plain)


def test_the_shipped_bottleneck_codes_real_frames_byte_for_byte():
    detector = build_detector("ssdlite_mobilenet_v2_person", weights="pretrained")
    bottleneck = load_for(default_bottleneck(), detector)
    codec, head = bottleneck.codec(), Head(detector, bottleneck=bottleneck).eval()
    with torch.inference_mode():
        for frame in video_frames(PERSON_VIDEO, max_frames=4, step=200):
            symbols = codec.symbols(head([frame])[0][0])
            planes = [symbols[c] - low for c, low in enumerate(codec.tables.low)]
            reference, compiled, _ = both(codec.tables.pmf, planes)
            assert np.array_equal(reference, compiled)
            assert codec.compress(head([frame])[0][0])[15:] == reference.astype("<u4").tobytes()


def test_the_quantized_model_and_its_refusals():
    cdf = quantized_cdf(np.array([0.25, 0.25, 0.5]))
    assert cdf[0] == 0 and cdf[-1] == 1 << 24 and np.all(np.diff(cdf) >= 1)  # every symbol at least weight one
    with pytest.raises(ValueError, match="2 .. 2\\*\\*24 - 2 symbols"):
        quantized_cdf(np.array([1.0]))
    with pytest.raises(ValueError, match="must sum to a positive"):
        quantized_cdf(np.zeros(4))
    with pytest.raises(ValueError, match="outside its model's alphabet"):
        RangeEncoder([np.array([0.5, 0.5])]).encode([np.array([0, 2])])
