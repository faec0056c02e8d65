"""Deploy codecs: exact round trips, real constriction bitstreams, clear errors on bad input."""

import numpy as np
import pytest
import torch
from splitinf.bottleneck import (
    ChannelTables,
    CodecError,
    EntropyCodec,
    FactorizedPrior,
    Float32Codec,
    MinMax8Codec,
    TablesNotBuilt,
)
from splitinf.bottleneck.bitstream import HEADER
from splitinf.bottleneck.codec import describe


def laplace_tables(channels: int, scale: float = 2.0, support: int = 20) -> ChannelTables:
    values = np.arange(-support, support + 1)
    pmf = np.exp(-np.abs(values) / scale)
    return ChannelTables(tuple([-support] * channels), tuple(pmf / pmf.sum() for _ in range(channels)))


def laplace_features(channels: int, size: int = 19, scale: float = 2.0, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.laplace(0, scale, size=(channels, size, size)).astype(np.float32))


def test_float32_round_trip_is_exact():
    features = torch.randn(32, 38, 38)
    data = Float32Codec().compress(features)
    assert len(data) == HEADER.size + features.numel() * 4
    assert torch.equal(Float32Codec().decompress(data), features)


def test_minmax8_error_is_at_most_half_a_step():
    features = torch.randn(16, 19, 19) * 3
    data = MinMax8Codec().compress(features)
    assert len(data) == HEADER.size + 8 + features.numel()
    step = (features.max() - features.min()) / 255
    assert (MinMax8Codec().decompress(data) - features).abs().max() <= step / 2 + 1e-5


def test_entropy_round_trip_is_bit_exact_and_near_the_cross_entropy():
    tables = laplace_tables(16)
    codec = EntropyCodec(tables)
    features = laplace_features(16)
    data = codec.compress(features)
    decoded = codec.decompress(data)
    assert torch.equal(decoded, torch.from_numpy(codec.symbols(features).astype(np.float32)))
    payload_bytes = len(data) - HEADER.size
    cross_entropy = tables.cross_entropy_bits(codec.symbols(features)) / 8
    assert cross_entropy <= payload_bytes <= cross_entropy * 1.01 + 4
    assert "entropy (16, 19, 19)" in describe(data)


def test_out_of_support_values_are_clamped_to_the_edges():
    codec = EntropyCodec(laplace_tables(1, support=3))
    features = torch.tensor([[[-50.0, 0.4, 2.6, 99.0]]])
    assert codec.decompress(codec.compress(features)).flatten().tolist() == [-3.0, 0.0, 3.0, 3.0]


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "short"])
def test_damaged_bitstreams_raise_codec_error(damage):
    codec = EntropyCodec(laplace_tables(8))
    data = bytearray(codec.compress(laplace_features(8)))
    if damage == "truncate":
        data = data[:-5]
    elif damage == "flip":
        data[HEADER.size + 10] ^= 0x40
    elif damage == "magic":
        data[0] = ord("X")
    else:
        data = data[:7]
    with pytest.raises(CodecError):
        codec.decompress(bytes(data))


def test_mismatched_tables_or_codec_are_refused():
    data = EntropyCodec(laplace_tables(8, scale=2.0)).compress(laplace_features(8))
    with pytest.raises(CodecError, match="coded with tables .* this decoder has"):
        EntropyCodec(laplace_tables(8, scale=3.0)).decompress(data)
    with pytest.raises(CodecError, match="uses codec 'entropy', this decoder is 'float32'"):
        Float32Codec().decompress(data)


def test_prior_tables_must_be_rebuilt_after_training():
    prior = FactorizedPrior(4)
    with pytest.raises(TablesNotBuilt):
        prior.tables()
    tables = prior.update_tables()
    assert prior.tables() is tables
    prior.train()
    prior(torch.randn(2, 4, 5, 5))
    with pytest.raises(TablesNotBuilt, match="run update_tables"):
        prior.tables()


def test_prior_learns_a_density_whose_tables_code_near_its_rate():
    torch.manual_seed(0)
    prior = FactorizedPrior(2)
    optimizer = torch.optim.Adam(prior.parameters(), lr=0.01)
    data = torch.stack([torch.randn(4000) * 4, torch.randn(4000) * 0.6]).reshape(1, 2, 40, 100)
    prior.train()
    for _ in range(300):
        optimizer.zero_grad()
        _, bits = prior(data)
        bits.backward()
        optimizer.step()
    prior.eval()
    tables = prior.update_tables()
    codec = EntropyCodec(tables)
    coded = len(codec.compress(data[0])) - HEADER.size
    # Gaussian entropies at unit bins: 0.5*log2(2πe σ²) = 4.05 and ~1.3 bits per symbol.
    assert 4000 * (4.05 + 1.0) / 8 < coded < 4000 * (4.05 + 1.6) / 8
