"""An ONNX file read as protobuf wire format, without onnx or onnxruntime: the web process runs this on every upload.

Two passes, both seeking past payloads instead of reading them. The top-level walk decides whether the bytes are a
ModelProto at all. The graph walk then looks inside the main graph (and the subgraphs of its nodes) for what would
make the loader read outside the file or allocate without bound, and for an input signature that is not a
detector's: a tensor kept in external data, a tensor declaring more elements than the file could hold, other than
one float32 N×3×S×S input. A graph whose bytes do not parse is left to the loader, whose parser says what is wrong.

The refusals share their words with ``evaluation.detectors.loading``, which checks the loaded session again.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from evaluation.errors import ArtifactRejected

# ModelProto's top-level fields (onnx.proto, onnx 1.23) -> protobuf wire type (0 varint, 2 length-delimited).
_MODEL_PROTO_FIELDS = {
    1: 0,  # ir_version
    2: 2,  # producer_name
    3: 2,  # producer_version
    4: 2,  # domain
    5: 0,  # model_version
    6: 2,  # doc_string
    7: 2,  # graph
    8: 2,  # opset_import
    14: 2,  # metadata_props
    20: 2,  # training_info
    25: 2,  # functions
    26: 2,  # configuration
}
_IR_VERSION, _GRAPH = 1, 7
_MAX_IR_VERSION = 100  # today's is 11-13; a much larger number means these bytes are not ONNX
_MAX_TOP_LEVEL_FIELDS = 100_000  # real models have a few dozen; bounds the work on a hostile file
# Fields the graph walk visits at most: a CNN detector has a few thousand; this bounds the web process's work on a
# hostile file to seconds.
MAX_GRAPH_FIELDS = 2_000_000
_MAX_SUBGRAPH_DEPTH = 32
_NAME_BYTES = 200  # enough of a tensor name or data location to show in a message
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_FIXED_WIDTHS = {_VARINT: 0, _FIXED64: 8, _FIXED32: 4}  # payload bytes after the tag (a varint's value is read)
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_FLOAT = 1  # TensorProto.DataType.FLOAT
# TensorProto.DataType -> the name onnxruntime gives the tensor type ("tensor(int64)").
_TYPE_NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
}

EXTERNAL_DATA_ADVICE = "Save it self-contained: onnx.save(model, 'detector.onnx', save_as_external_data=False)."


def inputs_message(names: list[str]) -> str:
    return (f"The ONNX model has {len(names)} inputs ({', '.join(names)}); a detector takes exactly one, "
            "the N×3×S×S image batch.")


def input_type_message(name: str, type_name: str) -> str:
    return (f"The ONNX model's input {name!r} has type {type_name}; Spectra feeds float32 images (tensor(float)). "
            "Export the model in float32.")


def input_rank_message(name: str, rank: int) -> str:
    return f"The ONNX model's input {name!r} has {rank} dimensions; it must be N×3×S×S."


def input_channels_message(name: str, channels: int) -> str:
    return f"The ONNX model's input {name!r} has {channels} channels; Spectra feeds RGB images (3 channels)."


class NotOnnx(Exception):
    """The bytes do not parse as the protobuf message expected here."""


class Truncated(NotOnnx):
    """The bytes ended inside a field."""


def read_varint(fileobj: BinaryIO) -> int:
    result = 0
    for shift in range(0, 70, 7):  # a 64-bit varint takes at most 10 bytes
        byte = fileobj.read(1)
        if not byte:
            raise Truncated
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
    raise NotOnnx


# --- the top level ------------------------------------------------------------------------------------


def model_graph_span(fileobj: BinaryIO, size: int) -> tuple[int, int] | None:
    """(offset, length) of the graph of the ModelProto in ``fileobj``, or None when the bytes are no ModelProto.

    Truncated means the walk began as a valid ModelProto (ir_version seen) and ran past the end of the file.
    """
    fileobj.seek(0)
    seen: set[int] = set()
    graph: tuple[int, int] | None = None
    try:
        for _ in range(_MAX_TOP_LEVEL_FIELDS):
            if fileobj.tell() == size:
                return graph if _IR_VERSION in seen else None  # the last field ended exactly at the end
            number, value = _top_level_field(fileobj, size)
            if number == _GRAPH:
                graph = (fileobj.tell() - value, value)
            seen.add(number)
    except Truncated:
        if _IR_VERSION in seen:
            raise
        return None
    except NotOnnx:
        return None
    return None


def _top_level_field(fileobj: BinaryIO, size: int) -> tuple[int, int]:
    """Read one ModelProto field (skipping its payload): its number and its value or payload length."""
    tag = read_varint(fileobj)
    number, wire_type = tag >> 3, tag & 7
    if _MODEL_PROTO_FIELDS.get(number) != wire_type:
        raise NotOnnx
    value = read_varint(fileobj)
    if number == _IR_VERSION and not 1 <= value <= _MAX_IR_VERSION:
        raise NotOnnx
    if wire_type == _LENGTH:
        if fileobj.tell() + value > size:
            raise Truncated  # the payload runs past the end of the file
        fileobj.seek(value, 1)
    return number, value


# --- inside the graph ---------------------------------------------------------------------------------


@dataclass
class _Field:
    number: int
    wire: int
    value: int  # the varint, or the payload's length
    start: int  # where the payload begins


@dataclass
class _Walk:
    fileobj: BinaryIO
    file_size: int
    fields_left: int = MAX_GRAPH_FIELDS
    inputs: list[tuple[str, int | None, list[int | None] | None]] = field(default_factory=list)
    initializers: set[str] = field(default_factory=set)

    def fields(self, start: int, end: int) -> Iterator[_Field]:
        """The fields of the message in bytes [start, end); the caller may read inside each payload."""
        position = start
        while position < end:
            self.spend()
            self.fileobj.seek(position)
            tag = read_varint(self.fileobj)
            number, wire = tag >> 3, tag & 7
            value = read_varint(self.fileobj) if wire in (_VARINT, _LENGTH) else 0
            payload = self.fileobj.tell()
            width = value if wire == _LENGTH else _FIXED_WIDTHS.get(wire)
            if number == 0 or width is None or payload + width > end:
                raise NotOnnx
            yield _Field(number, wire, value, payload)
            position = payload + width

    def spend(self) -> None:
        self.fields_left -= 1
        if self.fields_left < 0:
            raise ArtifactRejected(f"This ONNX model's graph has more than {MAX_GRAPH_FIELDS:,} protobuf fields, too "
                                   "many to check; a detector's graph has a few thousand.")

    def text(self, item: _Field) -> str:
        self.fileobj.seek(item.start)
        return self.fileobj.read(min(item.value, _NAME_BYTES)).decode("utf-8", "replace")

    def varints(self, item: _Field) -> list[int]:
        """A repeated varint field's values: one unpacked value, or a packed payload's."""
        if item.wire == _VARINT:
            return [item.value]
        if item.wire != _LENGTH:
            raise NotOnnx
        self.fileobj.seek(item.start)
        values, end = [], item.start + item.value
        while self.fileobj.tell() < end:
            self.spend()
            values.append(read_varint(self.fileobj))
        return values


def check_graph(fileobj: BinaryIO, span: tuple[int, int], file_size: int) -> None:
    """Refuse (ArtifactRejected) a graph with external data, tensors larger than the file or a non-detector
    signature. Bytes that do not parse are not judged here: the loader's parser reports them."""
    walk = _Walk(fileobj, file_size)
    try:
        _graph(walk, span[0], span[0] + span[1], depth=0)
    except NotOnnx:
        return
    _check_inputs([item for item in walk.inputs if item[0] not in walk.initializers])


def _graph(walk: _Walk, start: int, end: int, depth: int) -> None:
    if depth > _MAX_SUBGRAPH_DEPTH:
        raise NotOnnx
    for item in walk.fields(start, end):
        if item.wire != _LENGTH:
            continue
        inner = (item.start, item.start + item.value)
        if item.number == 1:  # node
            for attribute in walk.fields(*inner):
                if attribute.number == 5 and attribute.wire == _LENGTH:
                    _attribute(walk, attribute.start, attribute.start + attribute.value, depth)
        elif item.number == 5:  # initializer
            walk.initializers.add(_tensor(walk, *inner))
        elif item.number == 15:  # sparse_initializer: its values tensor carries the name
            walk.initializers.add(_sparse_tensor(walk, *inner))
        elif item.number == 11 and depth == 0:  # input of the main graph
            walk.inputs.append(_value_info(walk, *inner))


def _attribute(walk: _Walk, start: int, end: int, depth: int) -> None:
    for item in walk.fields(start, end):
        if item.wire != _LENGTH:
            continue
        inner = (item.start, item.start + item.value)
        if item.number in (5, 10):  # t, tensors
            _tensor(walk, *inner)
        elif item.number in (6, 11):  # g, graphs
            _graph(walk, *inner, depth=depth + 1)
        elif item.number in (22, 23):  # sparse_tensor, sparse_tensors
            _sparse_tensor(walk, *inner)


def _sparse_tensor(walk: _Walk, start: int, end: int) -> str:
    name = ""
    for item in walk.fields(start, end):
        if item.number in (1, 2) and item.wire == _LENGTH:  # values, indices
            found = _tensor(walk, item.start, item.start + item.value)
            name = found if item.number == 1 else name
    return name


def _tensor(walk: _Walk, start: int, end: int) -> str:
    """Check one TensorProto; returns its name."""
    dims: list[int] = []
    name, location, external = "", "", False
    for item in walk.fields(start, end):
        if item.number == 1:
            dims += walk.varints(item)
        elif item.number == 8 and item.wire == _LENGTH:
            name = walk.text(item)
        elif item.number == 14 and item.wire == _VARINT:
            external = external or item.value == _EXTERNAL
        elif item.number == 13 and item.wire == _LENGTH:  # external_data: key/value entries
            external = True
            location = location or _external_location(walk, item)
    if external:
        where = f" ({location!r})" if location else ""
        raise ArtifactRejected(f"The ONNX model keeps tensor {name!r} in separate external-data files{where}, but an "
                               f"upload is a single file. {EXTERNAL_DATA_ADVICE}")
    if any(dim >= 1 << 63 for dim in dims):
        raise NotOnnx  # a negative dimension: the loader's parser refuses it
    elements = math.prod(dims)
    # Every element takes at least half a byte of the file (4-bit types pack two per byte), so a tensor declaring
    # more cannot hold its data here: the runtime would be asked to allocate what the file never had.
    if elements > 2 * walk.file_size:
        raise ArtifactRejected(
            f"The ONNX model's tensor {name!r} declares {elements:,} elements (dimensions "
            f"{' × '.join(str(d) for d in dims)}), far more than a file of {walk.file_size:,} bytes can hold: the "
            "model is damaged. Export it again with torch.onnx.export."
        )
    return name


def _external_location(walk: _Walk, entry: _Field) -> str:
    key, value = "", ""
    for item in walk.fields(entry.start, entry.start + entry.value):
        if item.wire == _LENGTH and item.number in (1, 2):
            key, value = (walk.text(item), value) if item.number == 1 else (key, walk.text(item))
    return value if key == "location" else ""


def _value_info(walk: _Walk, start: int, end: int) -> tuple[str, int | None, list[int | None] | None]:
    """(name, element type or None when not a tensor, dimensions or None when no shape is given)."""
    name, elem_type, dims = "", None, None
    for item in walk.fields(start, end):
        if item.number == 1 and item.wire == _LENGTH:
            name = walk.text(item)
        elif item.number == 2 and item.wire == _LENGTH:  # TypeProto
            for kind in walk.fields(item.start, item.start + item.value):
                if kind.number == 1 and kind.wire == _LENGTH:  # tensor_type
                    elem_type, dims = _tensor_type(walk, kind.start, kind.start + kind.value)
    return name, elem_type, dims


def _tensor_type(walk: _Walk, start: int, end: int) -> tuple[int, list[int | None] | None]:
    elem_type, dims = 0, None
    for item in walk.fields(start, end):
        if item.number == 1 and item.wire == _VARINT:
            elem_type = item.value
        elif item.number == 2 and item.wire == _LENGTH:  # TensorShapeProto
            dims = []
            for dim in walk.fields(item.start, item.start + item.value):
                if dim.number == 1 and dim.wire == _LENGTH:
                    values = [v.value for v in walk.fields(dim.start, dim.start + dim.value)
                              if v.number == 1 and v.wire == _VARINT]
                    dims.append(values[0] if values else None)
    return elem_type, dims


def _check_inputs(inputs: list[tuple[str, int | None, list[int | None] | None]]) -> None:
    if len(inputs) != 1:
        raise ArtifactRejected(inputs_message([name for name, _, _ in inputs]))
    name, elem_type, dims = inputs[0]
    if elem_type != _FLOAT:
        shown = f"tensor({_TYPE_NAMES.get(elem_type, elem_type)})" if elem_type is not None else "a non-tensor type"
        raise ArtifactRejected(input_type_message(name, shown))
    if dims is not None and len(dims) != 4:
        raise ArtifactRejected(input_rank_message(name, len(dims)))
    if dims is not None and dims[1] not in (None, 3):
        raise ArtifactRejected(input_channels_message(name, dims[1]))
