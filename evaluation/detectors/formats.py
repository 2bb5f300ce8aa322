"""Recognise a detector upload from its bytes alone.

The web process calls this on every upload, so it must never deserialise anything: it reads a few header
bytes, a zip's central directory (names only), or walks the top-level protobuf fields of an ONNX file by
seeking past their payloads. No torch, onnx or onnxruntime import here (a test checks it).
"""
from __future__ import annotations

import json
import math
import struct
import zipfile
from enum import StrEnum
from typing import BinaryIO, NoReturn

from evaluation.detectors.onnx_bytes import Truncated, check_graph, model_graph_span
from evaluation.errors import ArtifactRejected


class ArtifactFormat(StrEnum):
    """Upload formats a detector can be evaluated from."""

    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"  # a state dict for a zoo architecture named with the upload


# Formats whose loaded detector is a torch module, so protocols can take gradients through it (ONNX gives outputs).
DIFFERENTIABLE_FORMATS = frozenset({ArtifactFormat.TORCHSCRIPT, ArtifactFormat.SAFETENSORS})

# How forms and the API title each format.
FORMAT_TITLES = {ArtifactFormat.TORCHSCRIPT: "TorchScript", ArtifactFormat.ONNX: "ONNX",
                 ArtifactFormat.SAFETENSORS: "safetensors + zoo architecture"}
INPUT_SIZE_RANGE = (16, 1024)  # the H = W a detector may declare, inclusive
DEFAULT_INPUT_SIZE = 224

_NAMES = {ArtifactFormat.TORCHSCRIPT: "TorchScript", ArtifactFormat.ONNX: "ONNX",
          ArtifactFormat.SAFETENSORS: "safetensors"}
_LABELS = {ArtifactFormat.TORCHSCRIPT: "a TorchScript archive", ArtifactFormat.ONNX: "an ONNX model",
           ArtifactFormat.SAFETENSORS: "a safetensors state dict"}

HOW_TO_EXPORT = (
    "Spectra accepts three formats. ONNX (recommended): torch.onnx.export(model.eval(), "
    "torch.rand(1, 3, S, S), 'detector.onnx', dynamo=False, opset_version=17, input_names=['image'], "
    "dynamic_axes={'image': {0: 'batch'}}), with S your input size. Safetensors, for a model zoo "
    "architecture: safetensors.torch.save_file(model.state_dict(), 'detector.safetensors'), uploaded with the "
    "architecture's name. TorchScript: torch.jit.save(torch.jit.script(model.eval()), 'detector.pt') (or "
    "torch.jit.trace(model.eval(), torch.rand(1, 3, S, S)) in place of torch.jit.script)."
)

_PICKLE_REASON = (
    "This file is a pickled PyTorch checkpoint (torch.save of a model or of a state dict). Loading a pickle "
    "can run arbitrary code, so Spectra never unpickles uploads."
)
_EXPORT_REASON = (
    "This file is a torch.export archive (.pt2, written by torch.export.save). Spectra does not load these: "
    "torch.export.load has code-execution paths (a pickle fallback, sympy evaluation of strings in the "
    "archive, bundled shared libraries)."
)
_PACKAGE_REASON = (
    "This file is a torch.package archive. Loading one imports the Python code it bundles, so Spectra "
    "does not accept it."
)

_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_HEADER_BYTES = 512  # enough for every magic we look at, including the tar "ustar" mark at offset 257


def sniff_artifact(fileobj: BinaryIO, *, declared: ArtifactFormat | str | None = None) -> ArtifactFormat:
    """Return the format of the seekable binary file ``fileobj``, or raise ArtifactRejected.

    Only headers, a zip central directory or protobuf tags are read; the file position is restored.
    If ``declared`` is given and the bytes say otherwise, the upload is refused with what it really is.
    """
    start = fileobj.tell()
    try:
        found = _sniff(fileobj)
    finally:
        fileobj.seek(start)
    if declared is not None and ArtifactFormat(declared) != found:
        wanted = ArtifactFormat(declared)
        raise ArtifactRejected(
            f"The file was declared as {_NAMES[wanted]} but it is "
            f"{_LABELS[found]}. Choose the format {found.value!r} when uploading, or upload "
            f"{_LABELS[wanted]} instead."
        )
    return found


def _sniff(fileobj: BinaryIO) -> ArtifactFormat:
    fileobj.seek(0)
    head = fileobj.read(_HEADER_BYTES)
    if not head:
        raise ArtifactRejected("The file is empty. " + HOW_TO_EXPORT)
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(fileobj)
    if head.startswith(_EMPTY_ZIP_MAGIC):
        _reject_zip("an empty zip archive")
    # Before the pickle check: a header length of 640..1535 bytes starts with the bytes of a pickle's PROTO.
    if _looks_like_safetensors(fileobj, head):
        safetensors_header(fileobj)  # raises with what is wrong unless the header describes the whole file
        return ArtifactFormat.SAFETENSORS
    if _is_pickle(head):
        raise ArtifactRejected(f"{_PICKLE_REASON} {HOW_TO_EXPORT}")
    # The ONNX walk is strict (every tag known, ends exactly at EOF), so it goes before the looser checks.
    if _is_onnx_model(fileobj):
        return ArtifactFormat.ONNX
    if _is_tar(head):
        raise ArtifactRejected(f"{_PICKLE_REASON} {HOW_TO_EXPORT}")
    raise ArtifactRejected(
        "This file is not a TorchScript archive, an ONNX model or a safetensors file (nor any format Spectra "
        "recognises). " + HOW_TO_EXPORT
    )


# --- zip archives -----------------------------------------------------------------------------------


def _sniff_zip(fileobj: BinaryIO) -> ArtifactFormat:
    try:
        # ZipFile reads only the end record and the central directory; no member is extracted.
        members = _zip_members(fileobj)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        _reject_zip("a damaged or truncated zip archive")
    entries = _relative_names([member.filename for member in members])
    if _is_export_archive(entries):
        raise ArtifactRejected(f"{_EXPORT_REASON} {HOW_TO_EXPORT}")
    if ".data/extern_modules" in entries or ".data/python_version" in entries:
        raise ArtifactRejected(f"{_PACKAGE_REASON} {HOW_TO_EXPORT}")
    has_code = any(name.startswith("code/") for name in entries)
    if has_code and "data.pkl" in entries and "constants.pkl" in entries:
        _check_member_sizes(members, _file_size(fileobj))
        return ArtifactFormat.TORCHSCRIPT
    if "data.pkl" in entries:
        # torch.save's zip format: the same layout as TorchScript minus the code, i.e. a bare pickle.
        raise ArtifactRejected(f"{_PICKLE_REASON} {HOW_TO_EXPORT}")
    _reject_zip("a zip archive but not a TorchScript archive")


# torch.jit.save deflates code and debug records (kilobytes to a few megabytes) and stores tensors as they are,
# so anything inflating beyond this is not a TorchScript archive but a zip bomb.
MAX_INFLATED_BYTES = 256 * 2**20
_MAX_ZIP_MEMBERS = 100_000  # a TorchScript archive has one member per tensor plus its code: hundreds to thousands
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what torch's reader reads


def _zip_members(fileobj: BinaryIO) -> list[zipfile.ZipInfo]:
    """The central directory's entries, after checking from the end record how many there are: each becomes a
    Python object, so a directory of millions of entries would take gigabytes to list."""
    end_record = zipfile._EndRecData(fileobj)  # type: ignore[attr-defined]  # the reader ZipFile itself uses
    if end_record is None:
        raise zipfile.BadZipFile("no end of central directory record")
    if end_record[zipfile._ECD_ENTRIES_TOTAL] > _MAX_ZIP_MEMBERS:  # type: ignore[attr-defined]
        raise ArtifactRejected(f"This zip archive lists {end_record[zipfile._ECD_ENTRIES_TOTAL]:,} files; a "  # type: ignore[attr-defined]
                               f"TorchScript archive has at most a few thousand. {HOW_TO_EXPORT}")
    return zipfile.ZipFile(fileobj).infolist()


def _check_member_sizes(members: list[zipfile.ZipInfo], size: int) -> None:
    """Refuse, from the sizes the central directory declares, what torch's reader would inflate without bound or
    read past the end of the file; nothing is inflated here."""
    inflated = 0
    for member in members:
        if member.compress_type not in _ZIP_METHODS:
            _reject_zip(f"a zip archive whose member {member.filename!r} uses compression method "
                        f"{member.compress_type}, which TorchScript archives never use")
        if member.header_offset + member.compress_size > size or (
                member.compress_type == zipfile.ZIP_STORED and member.file_size != member.compress_size):
            _reject_zip("a damaged or truncated zip archive (its directory declares more data than the file holds)")
        if member.compress_type == zipfile.ZIP_DEFLATED:
            inflated += member.file_size
    if inflated > MAX_INFLATED_BYTES:
        raise ArtifactRejected(
            f"This file is a zip archive whose compressed members would inflate to {inflated / 2**30:.1f} GiB "
            f"(from {size / 2**20:.1f} MiB): a zip bomb, not a TorchScript archive (torch.jit.save stores tensors "
            f"uncompressed and deflates at most {MAX_INFLATED_BYTES // 2**20} MiB of code). Nothing was unpacked. "
            + HOW_TO_EXPORT
        )


def _relative_names(names: list[str]) -> set[str]:
    """Entry names with the archive's root folder removed (torch writes every entry under one root)."""
    roots = {name.split("/", 1)[0] for name in names}
    if len(roots) == 1 and all("/" in name for name in names):
        return {name.split("/", 1)[1] for name in names}
    return set(names)


def _is_export_archive(entries: set[str]) -> bool:
    # torch >= 2.5 writes archive_format/archive_version and models/<name>.json; older torch.export.save
    # wrote serialized_exported_program.json at the top.
    markers = {"archive_format", "archive_version", "serialized_exported_program.json"}
    return bool(markers & entries) or any(name.startswith("models/") for name in entries)


def _reject_zip(what: str) -> NoReturn:
    raise ArtifactRejected(
        f"This file is {what}. If you zipped your model, upload the model file itself, not an archive. "
        + HOW_TO_EXPORT
    )


# --- other magics -----------------------------------------------------------------------------------


def _is_pickle(head: bytes) -> bool:
    # Pickle protocols 2-5 open with PROTO (0x80) and the protocol number. The legacy (pre-1.6) torch.save
    # format is a sequence of such pickles starting with a pickled magic number, so it is caught here too.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _is_tar(head: bytes) -> bool:
    # torch.save before 0.4 wrote a tar of pickles.
    return head[257:262] == b"ustar"


def _looks_like_safetensors(fileobj: BinaryIO, head: bytes) -> bool:
    """An 8-byte little-endian header length, then a JSON object of that length (the data may be cut)."""
    if len(head) < 10 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    if length > _MAX_SAFETENSORS_HEADER or 8 + length > _file_size(fileobj):
        return head[8:10] == b'{"'  # a cut-off file: safetensors_header says it is truncated
    fileobj.seek(8)
    try:
        return isinstance(json.loads(fileobj.read(length).decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


# --- safetensors ------------------------------------------------------------------------------------

# Bytes per element of each dtype the safetensors format names (safetensors/src/tensor.rs). Sub-byte dtypes are
# left out: no zoo architecture takes them.
_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_MAX_SAFETENSORS_HEADER = 100_000_000  # the format's own limit
METADATA_KEY = "__metadata__"


def safetensors_header(fileobj: BinaryIO) -> dict[str, dict]:
    """The tensors a safetensors file declares (name -> dtype, shape, data_offsets) after checking that the
    header is well formed and that the tensors tile the data section exactly, as the safetensors loader will.
    Reads only the JSON header (bounded); ArtifactRejected says what is wrong."""
    size = _file_size(fileobj)
    fileobj.seek(0)
    (length,) = struct.unpack("<Q", fileobj.read(8))
    if length > _MAX_SAFETENSORS_HEADER or 8 + length > size:
        raise ArtifactRejected(
            f"This looks like a safetensors file, but its header claims {length} bytes and the file has {size}: "
            "the file is truncated or damaged. Upload the complete file again."
        )
    header = _parse_header(fileobj.read(length))
    tensors = {name: entry for name, entry in header.items() if name != METADATA_KEY}
    _check_tiling(tensors, size - 8 - length)
    return tensors


def safetensors_metadata(fileobj: BinaryIO) -> dict[str, str]:
    """The free-form ``__metadata__`` strings of a safetensors file (empty when it has none)."""
    start = fileobj.tell()
    try:
        fileobj.seek(0)
        (length,) = struct.unpack("<Q", fileobj.read(8))
        metadata = _parse_header(fileobj.read(min(length, _MAX_SAFETENSORS_HEADER))).get(METADATA_KEY) or {}
    finally:
        fileobj.seek(start)
    return metadata


ARCHITECTURE_KEY = "spectra.architecture"


def artifact_architecture(fileobj: BinaryIO, declared: str = "") -> str:
    """The zoo architecture a safetensors upload names: ``declared`` or its metadata's, which must agree.
    Whether the name exists in the zoo is the caller's check (this module knows no zoo)."""
    recorded = safetensors_metadata(fileobj).get(ARCHITECTURE_KEY, "").strip()
    declared = declared.strip()
    if declared and recorded and declared != recorded:
        raise ArtifactRejected(f"The file's metadata says it holds weights of {recorded!r}, but the upload names "
                               f"the architecture {declared!r}. Choose {recorded!r}, or fix the file's metadata.")
    if not (declared or recorded):
        raise ArtifactRejected("A safetensors file holds weights only: name the model zoo architecture they "
                               "belong to (for example resnet50), or save it with metadata "
                               f"{{'{ARCHITECTURE_KEY}': name}}.")
    return declared or recorded


def _parse_header(raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        _reject_safetensors("its header is not valid JSON")
    if not isinstance(header, dict):
        _reject_safetensors("its header is not a JSON object")
    metadata = header.get(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        _reject_safetensors("its __metadata__ is not a map of strings")
    return header


def _check_tiling(tensors: dict[str, object], data_size: int) -> None:
    """Every entry has a known dtype, a shape and offsets that match, and together they cover the data."""
    spans = []
    for name, entry in tensors.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _SAFETENSORS_DTYPES:
            dtype = entry.get("dtype") if isinstance(entry, dict) else None
            _reject_safetensors(f"tensor {name!r} has the unsupported dtype {dtype!r}")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not _int_list(shape) or not _int_list(offsets) or len(offsets) != 2:
            _reject_safetensors(f"tensor {name!r} has no valid shape and data_offsets")
        begin, end = offsets
        if end - begin != math.prod(shape) * _SAFETENSORS_DTYPES[entry["dtype"]]:
            _reject_safetensors(f"tensor {name!r} takes {end - begin} bytes but its dtype and shape need "
                                f"{math.prod(shape) * _SAFETENSORS_DTYPES[entry['dtype']]}")
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            _reject_safetensors("its tensors overlap or leave gaps in the data section")
        position = end
    if position != data_size:
        _reject_safetensors(f"its tensors take {position} bytes but the data section has {data_size}")
    if not tensors:
        _reject_safetensors("it holds no tensors")


def _int_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _reject_safetensors(problem: str) -> NoReturn:
    raise ArtifactRejected(f"This file starts like a safetensors file, but {problem}. "
                           "Write it with safetensors.torch.save_file(model.state_dict(), path).")


def _file_size(fileobj: BinaryIO) -> int:
    fileobj.seek(0, 2)  # some wrappers' seek returns None, so ask tell()
    return fileobj.tell()


# --- ONNX -------------------------------------------------------------------------------------------


def _is_onnx_model(fileobj: BinaryIO) -> bool:
    """True when the file parses as a ModelProto at the top level (payloads skipped unread); a graph that holds
    what no detector upload may (external data, tensors larger than the file, another signature) is refused."""
    size = _file_size(fileobj)
    try:
        span = model_graph_span(fileobj, size)
    except Truncated:  # it started as a valid ModelProto: most likely a cut-off upload
        raise ArtifactRejected(
            "This looks like an ONNX model, but the file is truncated: it ends in the middle of the "
            "model. Upload the complete file again (check its size against the original)."
        ) from None
    if span is None:
        return False
    check_graph(fileobj, span, size)
    return True
