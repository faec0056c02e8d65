"""Read the constant tensors of a TF1 frozen ``GraphDef`` without TensorFlow.

A frozen graph keeps every weight as a ``Const`` node. We decode just enough of the protobuf wire format
(GraphDef.node → NodeDef{name, op, attr} → AttrValue.tensor → TensorProto) to recover those arrays; field
numbers are those of TensorFlow's ``graph.proto``, ``node_def.proto``, ``attr_value.proto`` and
``tensor.proto``. Anything malformed raises :class:`GraphDefError` naming the byte offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

# TensorFlow DataType enum values → numpy dtypes (only those a detector's constants use).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 6: np.int8, 9: np.int64, 10: np.bool_}
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class GraphDefError(ValueError):
    """The bytes are not a well-formed GraphDef."""


class UnsupportedDtype(GraphDefError):
    """A constant of a dtype we do not decode (strings, …): never a weight."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise GraphDefError(f"truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise GraphDefError(f"varint longer than 64 bits at byte {pos}")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one message; LENGTH values are the raw bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(data, pos)
        elif wire == LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise GraphDefError(f"field {number} claims {size} bytes at byte {pos}, past the end")
            value, pos = data[pos : pos + size], pos + size
        elif wire == FIXED32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        elif wire == FIXED64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        else:
            raise GraphDefError(f"unsupported wire type {wire} for field {number} at byte {pos}")
        yield number, wire, value


def _packed_or_single(wire: int, value: int | bytes, fmt: str) -> list:
    if wire == LENGTH:
        return list(struct.unpack(f"<{len(value) // struct.calcsize(fmt)}{fmt}", value))
    if fmt == "f":
        return [struct.unpack("<f", int(value).to_bytes(4, "little"))[0]]
    return [value]


def decode_tensor(data: bytes) -> np.ndarray:
    """A TensorProto → numpy array (``tensor_content`` or the typed ``*_val`` lists, broadcast if short)."""
    dtype_code, shape, content, values = 0, [], None, []
    for number, wire, value in fields(data):
        if number == 1:
            dtype_code = value
        elif number == 2:
            for dim_number, _, dim in fields(value):
                if dim_number == 2:
                    shape.append(next((v for n, _, v in fields(dim) if n == 1), 0))
        elif number == 4:
            content = value
        elif number == 5:
            values += _packed_or_single(wire, value, "f")
        elif number in (7, 10):
            raw = _varint_list(value) if wire == LENGTH else [value]
            values += [v - (1 << 64) if v >= 1 << 63 else v for v in raw]  # two's complement varints
    if dtype_code not in DTYPES:
        raise UnsupportedDtype(f"unsupported tensor dtype {dtype_code}")
    dtype = DTYPES[dtype_code]
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=dtype).copy()
    elif values:
        array = np.array(values, dtype=dtype)
        if array.size == 1 and count > 1:
            array = np.full(count, array[0], dtype=dtype)
    else:
        array = np.zeros(count, dtype=dtype)
    if array.size != count:
        raise GraphDefError(f"tensor has {array.size} values for shape {shape}")
    return array.reshape(shape)


def _varint_list(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def graph_constants(data: bytes) -> dict[str, np.ndarray]:
    """Every ``Const`` node of a serialized GraphDef, by node name."""
    constants = {}
    node_count = 0
    for number, _, node in fields(data):
        if number != 1:
            continue
        node_count += 1
        name = op = ""
        tensor = None
        for field_number, _, value in fields(node):
            if field_number == 1:
                name = value.decode()
            elif field_number == 2:
                op = value.decode()
            elif field_number == 5:  # map<string, AttrValue> entry
                entry = dict((n, v) for n, _, v in fields(value))
                if entry.get(1) == b"value":
                    tensor = next((v for n, _, v in fields(entry.get(2, b"")) if n == 8), None)
        if op == "Const" and tensor is not None:
            try:
                constants[name] = decode_tensor(tensor)
            except UnsupportedDtype:
                continue
    if node_count == 0:
        raise GraphDefError("no nodes found: not a GraphDef")
    return constants
