import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from splitinf.data import PERSON_VIDEO, jpeg_bytes, video_frames

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_video_reports_stages_and_sizes(capsys):
    example = load_example("split_video")
    assert example.main(["--frames", "3", "--split", "s16", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 3
    assert set(summary["p50_ms"]) == {"decode", "head", "tail"}
    sizes = summary["bytes_per_frame"]
    assert sizes["float32"] == 96 * 19 * 19 * 4 and sizes["int8"] == 96 * 19 * 19
    frames = list(video_frames(PERSON_VIDEO, max_frames=3))
    assert sizes["jpeg_q90"] == pytest.approx(np.mean([len(jpeg_bytes(f, 90)) for f in frames]), abs=1)
