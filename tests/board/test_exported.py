"""The exported engine against eager torch: the fp32 graphs give the torch device's exact bytes and
detections; the int8 graphs give streams the edge decodes; a folder that is damaged, made for another head or
without its runtime is refused with one clear line."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from splitinf.bottleneck.bitstream import unpack
from splitinf.head.modes import torch_engine
from splitinf.tail import Tail
from splitinf.tail.modes import SplitDecoder

from splitinf.board.engine import ExportedEngine
from splitinf.board.manifest import ExportError, check_made_for, read_manifest
from splitinf.data import PERSON_VIDEO, video_frames
from splitinf.models import Geometry
from splitinf.modes import LOCAL, SPLIT


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.numpy() for f in video_frames(PERSON_VIDEO, max_frames=6, step=40)]


def test_the_fp32_export_writes_the_torch_device_s_bytes_and_detections(shipped_setup, exported, frames):
    folder, manifest = exported
    assert manifest.fingerprint == shipped_setup.fingerprint and set(manifest.graphs) == {
        "head_a", "head_b", "prefilter", "local"}
    onnx = ExportedEngine(folder, "fp32", threads=1).halves({SPLIT, LOCAL})
    eager = torch_engine(shipped_setup).halves({SPLIT, LOCAL})
    for frame in frames:
        assert onnx[SPLIT](frame)[0] == eager[SPLIT](frame)[0]  # the payload, bitstream included, to the byte
        ours, theirs = onnx[LOCAL](frame)[0], eager[LOCAL](frame)[0]
        assert ours["labels"].tolist() == theirs["labels"].tolist()
        np.testing.assert_allclose(ours["boxes"], theirs["boxes"].numpy(), atol=1e-2)
        np.testing.assert_allclose(ours["scores"], theirs["scores"].numpy(), atol=1e-5)


def test_int8_streams_decode_at_the_edge_and_mostly_keep_the_symbols(shipped_setup, exported, frames):
    folder, _ = exported
    int8 = ExportedEngine(folder, "int8", threads=1).halves({SPLIT})[SPLIT]
    eager = torch_engine(shipped_setup).halves({SPLIT})[SPLIT]
    decoder = SplitDecoder(Tail(shipped_setup.detector, None, shipped_setup.bottleneck), shipped_setup.codec)
    encoder = shipped_setup.codec.encoder
    for frame in frames:
        payload, stages = int8(frame)
        assert set(stages) == {"head", "encode"} and unpack(payload.data)[0].shape == (32, 19, 19)
        with torch.inference_mode():
            found = decoder([decoder.decode(payload.data, payload.codec)], [Geometry(*payload.geometry)])[0]
        assert found["boxes"].shape[1] == 4 and payload.geometry[0] == frame.shape[1:]
        same = encoder.symbols(int8.features(frame)[0]) == encoder.symbols(eager.features(frame)[0].numpy())
        assert same.mean() > 0.8  # quantization moves a few rounded symbols by one, not the picture


def test_the_exported_prefilter_decides_as_the_torch_one(shipped_setup, exported, frames):
    from splitinf.head import load_prefilter

    from splitinf.weights.checkpoints import DEFAULT_PREFILTER, find_checkpoint

    folder, manifest = exported
    for threshold in (1e-6, 1 - 1e-6, manifest.prefilter["threshold"]):
        onnx = ExportedEngine(folder, "fp32", prefilter=True, prefilter_threshold=threshold).gate()
        prefilter = load_prefilter(find_checkpoint(DEFAULT_PREFILTER), shipped_setup.detector.name, threshold)
        eager = torch_engine(shipped_setup, prefilter).gate()
        assert [onnx(f)[0] for f in frames] == [eager(f)[0] for f in frames]


def test_a_damaged_or_foreign_export_is_refused_naming_what_is_wrong(exported, tmp_path):
    folder, manifest = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    head = copy / manifest.graphs["head_a"]["int8"]
    head.write_bytes(head.read_bytes()[:1000])
    with pytest.raises(ExportError, match=r"head_a\.int8\.onnx does not match its manifest's SHA-256"):
        read_manifest(copy)
    head.unlink()
    with pytest.raises(ExportError, match=r"lacks head_a\.int8\.onnx"):
        read_manifest(copy)
    with pytest.raises(ExportError, match=r"no exported engine in .*splitinf export"):
        read_manifest(tmp_path / "nothing")
    (copy / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ExportError, match="not a splitinf-exported manifest"):
        read_manifest(copy)
    with pytest.raises(ExportError, match=r"runs ssdlite_mobilenet_v2_person, bottleneck person_s16t7.*asked for "
                                          r"ssdlite_mobilenet_v2_person, split s16"):
        check_made_for(manifest, folder, {"model": "ssdlite_mobilenet_v2_person", "split": "s16"})


def test_a_missing_onnxruntime_is_one_clear_line(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` meets where it is absent
    with pytest.raises(ExportError, match=r"needs the onnxruntime package.*pip install onnxruntime"):
        ExportedEngine(exported[0], "int8")
