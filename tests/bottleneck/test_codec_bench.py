"""``splitinf bench codec`` by the checkpoint's name (as the README runs it): the range-coded bitstream within 1 %
of the symbols' cross-entropy under the same tables, and far smaller than the 8-bit baseline."""

import json

from splitinf.cli import main


def test_bench_codec_takes_a_checkpoint_name_and_codes_near_the_cross_entropy(capsys):
    assert main(["bench", "codec", "--bottleneck", "person_s16t7_c32_k27_gpu.pt", "--frames", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["frames"] == 3
    assert 1.0 <= result["overhead_ratio"] <= 1.01
    assert result["bytes_per_frame"] < result["baseline_minmax8"]["bytes_per_frame"] / 3
