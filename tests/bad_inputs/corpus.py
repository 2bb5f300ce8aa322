"""The bad-input corpus: every kind of bad input the suite sends to Spectra, each defined once here.

A kind has a name, a builder that makes the bad bytes, files or requests in a test's tmp_path, and the fragment
of the plain-words answer Spectra must give (None for the images Spectra decodes instead of refusing). The test
modules beside this one feed each family through the real entry points and check that the answer is that message
(never a 500 or a traceback) and that the next good input still goes through.

| kind | family | what it is | outcome |
| --- | --- | --- | --- |
| random-bytes | model | 4 KiB of seeded random bytes declared as ONNX | refused |
| truncated-torchscript | model | a real torch.jit.save file cut in half | refused |
| pickle-payload-raw | model | a bare pickle whose __reduce__ would create a marker file | refused, never run |
| pickle-payload-torch-save | model | torch.save of the same payload (a zip with data.pkl) | refused, never run |
| zip-bomb | model | a TorchScript-shaped zip with a member inflating to 4 GB | refused, never inflated |
| torch-export-pt2 | model | a torch.export.save archive | refused |
| onnx-external-data-outside | model | an initializer kept in external data at ../../etc/passwd | refused |
| onnx-wrong-input-rank | model | a detector whose input is N×3×H | refused |
| onnx-huge-declared-tensor | model | an initializer declaring 10^12 elements, no data | refused |
| onnx-two-inputs | model | a graph with two inputs | refused |
| onnx-int64-input | model | a graph whose input is int64 | refused |
| safetensors-offsets-beyond-file | model | a tensor whose data_offsets run past the file | refused |
| safetensors-overlapping-offsets | model | two tensors sharing bytes | refused |
| safetensors-huge-header-length | model | a header length of 100 MB in a 60-byte file | refused |
| safetensors-unknown-architecture | model | valid weights naming an architecture the zoo lacks | refused |
| right-extension-wrong-content | model | a PNG image named detector.onnx | refused |
| empty-upload | model | 0 bytes | refused |
| over-upload-limit | model | a valid 3 MiB ONNX file with SPECTRA_MAX_UPLOAD_MB at 1 | refused while streaming |
| text-named-png | image | a text file named .png | refused |
| empty-jpg | image | an empty .jpg | refused |
| truncated-jpeg | image | the first half of a JPEG | refused |
| decompression-bomb-png | image | a 10,000 × 10,000 PNG (100 MP, over Pillow's limit) | refused |
| symlink-outside-root | image | a symbolic link to an image outside the dataset folder | refused |
| one-pixel-image | image | a 1 × 1 PNG | decoded |
| cmyk-jpeg | image | a CMYK JPEG | decoded |
| sixteen-bit-grey-png | image | a 16-bit greyscale PNG | decoded |
| sixteen-bit-rgb-png | image | a 16-bit RGB PNG | decoded |
| grey-alpha-png | image | a greyscale PNG with an alpha channel | decoded |
| palette-transparency-png | image | a palette PNG with a tRNS table | decoded |
| manifest-parent-traversal | manifest | a manifest row whose path is ../../etc/passwd | refused |
| manifest-absolute-path | manifest | a manifest row whose path is /etc/passwd | refused |
| name-10kb | request | a 10 kB detector name (form and API) | 400 |
| source-100kb | request | a 100 kB "trained on" text (form and API) | 400 |
| fields-over-request-limit | request | 100 kB of form fields with DATA_UPLOAD_MAX_MEMORY_SIZE at 50 kB | 400 |
| input-size-huge | request | input size 10^30 (form and API) | 400 |
| input-size-negative | request | input size -5 (form and API) | 400 |
| input-size-not-a-number | request | input size "abc", "1.5", "true" (form and API) | 400 |
| api-invalid-json | request | a JSON body that does not parse, to the upload API | 415 |
| api-json-list | request | a JSON list instead of an object, to the upload API | 415 |
| unknown-benchmark | request | an upload to benchmark "nope" (form and API) | 400 |
| unknown-format | request | an upload declared as "pickle" (form and API) | 400 |
| wrong-method | request | GET or DELETE where the API takes POST or GET; POST or PUT on read-only pages | 405 |
| nonexistent-submission-id | request | submission 999999 (page and API) | 404 |
| non-integer-id | request | submission "abc" (page and API) | 404 |
| id-beyond-bigint | request | submission 10^23 (page and API) | 404 |
| pagination-not-a-number | request | limit=abc, limit=0, limit=501, offset=-1 | 400 |
| pagination-beyond-range | request | an offset past the end of the list | 404 |
| unknown-query-parameter | request | page=2 on a list paged by limit and offset | 400 |
| malformed-multipart | request | a multipart body without parts, and one without a boundary | 400 |

The platform never reads dataset archives (it only writes them: evaluation.datasets.archives), so tar members
named ``../x``, absolute members and symlink members have no reader to attack; the archive writer's side of that
risk, a symbolic link out of the dataset folder, is the kind symlink-outside-root.
"""
from __future__ import annotations

import builtins
import io
import json
import pickle
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests import detector_files
from tests.upload_channels import INPUT_SIZE, MiB, pad_onnx

MARKER = "PAYLOAD-RAN"  # the file a pickle payload would create in the test's folder


@dataclass(frozen=True)
class Kind:
    name: str
    family: str  # "model", "image", "manifest" or "request"
    message: str | None  # a fragment of the answer; None: an image Spectra decodes rather than refuses
    build: Callable[..., Any]


# --- models -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    """A detector upload: the file, the format it is declared as, the architecture named with it."""

    path: Path
    fmt: str
    architecture: str = ""
    settings: dict[str, int] = field(default_factory=dict)  # Django settings the kind needs (the upload limit)
    web_only: bool = False  # only the web process refuses it (its size); the file itself would load


def _model(path: Path, data: bytes, fmt: str, **kwargs: Any) -> ModelFile:
    path.write_bytes(data)
    return ModelFile(path, fmt, **kwargs)


class _Payload:
    """Unpickling this object calls open(marker, "w"): the marker file appears if the pickle ever runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return builtins.open, (self.marker, "w")


def pickle_payload_raw(tmp: Path) -> ModelFile:
    return _model(tmp / "detector.pt", pickle.dumps({"model": _Payload(tmp / MARKER)}), "torchscript")


def pickle_payload_torch_save(tmp: Path) -> ModelFile:
    import torch

    torch.save({"model": _Payload(tmp / MARKER)}, tmp / "detector.pt")
    return ModelFile(tmp / "detector.pt", "torchscript")


def truncated_torchscript(tmp: Path) -> ModelFile:
    whole = detector_files.write_torchscript(tmp / "whole.pt").read_bytes()
    return _model(tmp / "detector.pt", whole[: len(whole) // 2], "torchscript")


ZIP_BOMB_BYTES = 2**32 - 1  # the largest member a zip without zip64 records can declare: 4.3 GB


def zip_bomb(tmp: Path) -> ModelFile:
    """A TorchScript-shaped zip (code/, data.pkl, constants.pkl) whose deflated data/0 really inflates to 4.3 GB
    of zeros: every 1 MiB of zeros deflates, after a full flush, to the same 1 KB block, so the stream is that block
    repeated. Its CRC is left 0: a reader only finds out after inflating everything."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(MiB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    rest = ZIP_BOMB_BYTES - 4095 * MiB
    stream = block * 4095 + deflate.compress(bytes(rest)) + deflate.flush(zlib.Z_FINISH)
    members = [(f"bomb/{name}", data, 0, len(data), zipfile.ZIP_STORED)
               for name, data in (("code/__torch__.py", b"class M: pass\n"), ("data.pkl", b"\x80\x02}q\x00."),
                                  ("constants.pkl", b"\x80\x02)."), ("version", b"3\n"))]
    members.append(("bomb/data/0", stream, 0, ZIP_BOMB_BYTES, zipfile.ZIP_DEFLATED))
    return _model(tmp / "detector.pt", _zip_bytes(members), "torchscript")


def _zip_bytes(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive written field by field: (name, stored bytes, crc, declared size, method) per member."""
    body, directory = bytearray(), bytearray()
    for name, data, crc, size, method in members:
        encoded = name.encode()
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
                                 len(encoded), 0, 0, 0, 0, 0, len(body)) + encoded
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size,
                            len(encoded), 0) + encoded + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    return bytes(body + directory + end)


def torch_export_pt2(tmp: Path) -> ModelFile:
    return ModelFile(detector_files.write_export_archive(tmp / "detector.pt2"), "torchscript")


def _onnx_model(tmp: Path, inputs: list, nodes: list, initializers: tuple = ()) -> ModelFile:
    """A hand-built ONNX graph (onnx.helper) ending in one output "logits"."""
    from onnx import TensorProto, helper

    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N"])
    graph = helper.make_graph(nodes, "detector", inputs, [output], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _model(tmp / "detector.onnx", model.SerializeToString(), "onnx")


def _image_input(elem_type: str = "FLOAT", shape: tuple = ("N", 3, INPUT_SIZE, INPUT_SIZE), name: str = "image"):  # noqa: ANN202
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, getattr(TensorProto, elem_type), list(shape))


def _mean(source: str = "image", target: str = "logits", axes: tuple = (1, 2, 3)):  # noqa: ANN202
    from onnx import helper

    return helper.make_node("ReduceMean", [source], [target], axes=list(axes), keepdims=0)


def onnx_external_data_outside(tmp: Path) -> ModelFile:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones(1, np.float32), "weight")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "4")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    nodes = [_mean(target="mean"), helper.make_node("Add", ["mean", "weight"], ["logits"])]
    return _onnx_model(tmp, [_image_input()], nodes, (weight,))


def onnx_wrong_input_rank(tmp: Path) -> ModelFile:
    return _onnx_model(tmp, [_image_input(shape=("N", 3, INPUT_SIZE))], [_mean(axes=(1, 2))])


def onnx_huge_declared_tensor(tmp: Path) -> ModelFile:
    from onnx import TensorProto, helper

    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[10**12])  # 4 TB declared, no data
    nodes = [_mean(target="mean"), helper.make_node("Add", ["mean", "huge"], ["logits"])]
    return _onnx_model(tmp, [_image_input()], nodes, (huge,))


def onnx_two_inputs(tmp: Path) -> ModelFile:
    from onnx import helper

    inputs = [_image_input(), _image_input(shape=("N",), name="bias")]
    return _onnx_model(tmp, inputs, [_mean(target="mean"), helper.make_node("Add", ["mean", "bias"], ["logits"])])


def onnx_int64_input(tmp: Path) -> ModelFile:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["image"], ["floats"], to=TensorProto.FLOAT), _mean(source="floats")]
    return _onnx_model(tmp, [_image_input("INT64")], nodes)


def _safetensors_bytes(header: dict[str, Any], data: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def safetensors_offsets_beyond_file(tmp: Path) -> ModelFile:
    header = {"weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    return _model(tmp / "detector.safetensors", _safetensors_bytes(header, bytes(8)), "safetensors",
                  architecture="spectral-lr")


def safetensors_overlapping_offsets(tmp: Path) -> ModelFile:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    return _model(tmp / "detector.safetensors", _safetensors_bytes(header, bytes(12)), "safetensors",
                  architecture="spectral-lr")


def safetensors_huge_header_length(tmp: Path) -> ModelFile:
    header = {"weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    data = _safetensors_bytes(header, bytes(4), length=100_000_000)
    return _model(tmp / "detector.safetensors", data, "safetensors", architecture="spectral-lr")


def safetensors_unknown_architecture(tmp: Path) -> ModelFile:
    header = {"__metadata__": {"spectra.architecture": "resnet9000"},
              "weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    return _model(tmp / "detector.safetensors", _safetensors_bytes(header, bytes(4)), "safetensors")


def right_extension_wrong_content(tmp: Path) -> ModelFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "PNG")
    return _model(tmp / "detector.onnx", buffer.getvalue(), "onnx")


def over_upload_limit(tmp: Path) -> ModelFile:
    good = detector_files.write_onnx(tmp / "good.onnx", input_size=INPUT_SIZE).read_bytes()
    return _model(tmp / "detector.onnx", pad_onnx(good, 3 * MiB), "onnx",
                  settings={"SPECTRA_MAX_UPLOAD_BYTES": 1 * MiB}, web_only=True)


_NOT_A_MODEL = "not a TorchScript archive, an ONNX model or a safetensors file"
_PICKLE = "pickled PyTorch checkpoint"
MODELS = [
    Kind("random-bytes", "model", _NOT_A_MODEL,
         lambda tmp: _model(tmp / "detector.onnx", b"\x00" + random.Random(0).randbytes(4095), "onnx")),
    Kind("truncated-torchscript", "model", "damaged or truncated zip archive", truncated_torchscript),
    Kind("pickle-payload-raw", "model", _PICKLE, pickle_payload_raw),
    Kind("pickle-payload-torch-save", "model", _PICKLE, pickle_payload_torch_save),
    Kind("zip-bomb", "model", "a zip bomb, not a TorchScript archive", zip_bomb),
    Kind("torch-export-pt2", "model", "torch.export archive", torch_export_pt2),
    Kind("onnx-external-data-outside", "model", "in separate external-data files ('../../etc/passwd')",
         onnx_external_data_outside),
    Kind("onnx-wrong-input-rank", "model", "input 'image' has 3 dimensions; it must be N×3×S×S",
         onnx_wrong_input_rank),
    Kind("onnx-huge-declared-tensor", "model", "tensor 'huge' declares 1,000,000,000,000 elements",
         onnx_huge_declared_tensor),
    Kind("onnx-two-inputs", "model", "has 2 inputs (image, bias); a detector takes exactly one", onnx_two_inputs),
    Kind("onnx-int64-input", "model", "input 'image' has type tensor(int64); Spectra feeds float32 images",
         onnx_int64_input),
    Kind("safetensors-offsets-beyond-file", "model", "its tensors take 16 bytes but the data section has 8",
         safetensors_offsets_beyond_file),
    Kind("safetensors-overlapping-offsets", "model", "its tensors overlap or leave gaps",
         safetensors_overlapping_offsets),
    Kind("safetensors-huge-header-length", "model", "its header claims 100000000 bytes and the file has",
         safetensors_huge_header_length),
    Kind("safetensors-unknown-architecture", "model", "no zoo entry named 'resnet9000'",
         safetensors_unknown_architecture),
    Kind("right-extension-wrong-content", "model", _NOT_A_MODEL, right_extension_wrong_content),
    Kind("empty-upload", "model", "The file is empty", lambda tmp: _model(tmp / "detector.onnx", b"", "onnx")),
    Kind("over-upload-limit", "model", "The file is 3.0 MiB; the limit is 1 MiB", over_upload_limit),
]


# --- images -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFile:
    """An image file written for a dataset scan; ``expected`` is the RGB it must decode to (None: refused)."""

    name: str
    expected: np.ndarray | None = None
    tolerance: int = 0  # per-channel difference allowed (lossy JPEG)


def _save(folder: Path, name: str, image: Image.Image, fmt: str, **options: Any) -> Path:
    path = folder / name
    image.save(path, fmt, **options)
    return path


def _rgb_noise(size: tuple[int, int], seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def text_named_png(folder: Path, scratch: Path) -> ImageFile:
    (folder / "notes.png").write_text("These are my notes, not an image.\n", encoding="utf-8")
    return ImageFile("notes.png")


def empty_jpg(folder: Path, scratch: Path) -> ImageFile:
    (folder / "empty.jpg").write_bytes(b"")
    return ImageFile("empty.jpg")


def truncated_jpeg(folder: Path, scratch: Path) -> ImageFile:
    whole = _save(scratch, "whole.jpg", _rgb_noise((64, 64), 7), "JPEG", quality=90).read_bytes()
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    return ImageFile("cut.jpg")


def decompression_bomb_png(folder: Path, scratch: Path) -> ImageFile:
    # 1 bit per pixel: 12.5 MB while it is written, a few kB on disk, 300 MB if decoded to RGB.
    _save(folder, "bomb.png", Image.new("1", (10_000, 10_000)), "PNG")
    return ImageFile("bomb.png")


def symlink_outside_root(folder: Path, scratch: Path) -> ImageFile:
    outside = _save(scratch, "outside.png", _rgb_noise((16, 16), 8), "PNG")
    (folder / "linked.png").symlink_to(outside)
    return ImageFile("linked.png")


def one_pixel_image(folder: Path, scratch: Path) -> ImageFile:
    _save(folder, "dot.png", Image.new("RGB", (1, 1), (12, 200, 99)), "PNG")
    return ImageFile("dot.png", np.array([[[12, 200, 99]]], np.uint8))


CMYK_QUADRANTS = ((0, 0, 0, 0), (255, 0, 128, 0), (64, 128, 192, 32), (10, 20, 30, 200))  # (C, M, Y, K)


def cmyk_jpeg(folder: Path, scratch: Path) -> ImageFile:
    """Four flat 8×8 CMYK quadrants (one JPEG block each, so quality 100 keeps them within a step or two).
    Expected: R = (255 − C)(255 − K) / 255, and likewise G from M and B from Y, computed here."""
    cmyk = np.zeros((16, 16, 4), np.uint8)
    for index, value in enumerate(CMYK_QUADRANTS):
        top, left = divmod(index, 2)
        cmyk[top * 8:top * 8 + 8, left * 8:left * 8 + 8] = value
    _save(folder, "cmyk.jpg", Image.frombytes("CMYK", (16, 16), cmyk.tobytes()), "JPEG", quality=100)
    ink, black = cmyk[..., :3].astype(float), cmyk[..., 3:].astype(float)
    return ImageFile("cmyk.jpg", np.rint((255 - ink) * (255 - black) / 255).astype(np.uint8), tolerance=3)


def _sixteen_bit_ramp() -> np.ndarray:
    """16×16 samples whose high bytes are 0..255 and low bytes 3: clipping to 255 would turn all but one white."""
    return (np.arange(256, dtype=np.uint16).reshape(16, 16) * 256 + 3).astype(np.uint16)


def sixteen_bit_grey_png(folder: Path, scratch: Path) -> ImageFile:
    """Written by OpenCV, not Pillow; the 8-bit value of a 16-bit sample is its high byte."""
    grey = _sixteen_bit_ramp()
    cv2.imwrite(str(folder / "grey16.png"), grey)
    return ImageFile("grey16.png", np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2))


def sixteen_bit_rgb_png(folder: Path, scratch: Path) -> ImageFile:
    ramp = _sixteen_bit_ramp()
    rgb = np.stack([ramp, 65535 - ramp, ramp // 2], axis=2)
    cv2.imwrite(str(folder / "rgb16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    return ImageFile("rgb16.png", (rgb >> 8).astype(np.uint8))


def grey_alpha_png(folder: Path, scratch: Path) -> ImageFile:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    alpha = np.where(np.arange(64).reshape(8, 8) % 2, 255, 0).astype(np.uint8)  # every other pixel transparent
    _save(folder, "grey-alpha.png", Image.frombytes("LA", (8, 8), np.stack([grey, alpha], axis=2).tobytes()), "PNG")
    return ImageFile("grey-alpha.png", np.repeat(grey[..., None], 3, axis=2))  # the stored grey, alpha dropped


def palette_transparency_png(folder: Path, scratch: Path) -> ImageFile:
    palette = np.array([[0, 0, 0], [200, 100, 50], [10, 20, 30], [255, 255, 0]], np.uint8)
    indices = (np.arange(64).reshape(8, 8) % 4).astype(np.uint8)
    image = Image.frombytes("P", (8, 8), indices.tobytes())
    image.putpalette(palette.flatten().tolist())
    _save(folder, "palette.png", image, "PNG", transparency=bytes([0, 255, 128, 255]))  # a tRNS table
    return ImageFile("palette.png", palette[indices])  # the palette colours, transparency dropped


IMAGES = [
    Kind("text-named-png", "image", "not an image format Pillow knows", text_named_png),
    Kind("empty-jpg", "image", "the file is empty", empty_jpg),
    Kind("truncated-jpeg", "image", "image file is truncated", truncated_jpeg),
    Kind("decompression-bomb-png", "image", "is 10000×10000 = 100,000,000 pixels, more than the 89,478,485",
         decompression_bomb_png),
    Kind("symlink-outside-root", "image", "leads outside the dataset folder", symlink_outside_root),
    Kind("one-pixel-image", "image", None, one_pixel_image),
    Kind("cmyk-jpeg", "image", None, cmyk_jpeg),
    Kind("sixteen-bit-grey-png", "image", None, sixteen_bit_grey_png),
    Kind("sixteen-bit-rgb-png", "image", None, sixteen_bit_rgb_png),
    Kind("grey-alpha-png", "image", None, grey_alpha_png),
    Kind("palette-transparency-png", "image", None, palette_transparency_png),
]


# --- manifests ----------------------------------------------------------------------------------------


def good_manifest_line(path: str = "real/0.png", split: str = "test") -> dict[str, Any]:
    return {"path": path, "label": 0, "generator": "g", "split": split, "width": 8, "height": 8, "format": "PNG",
            "jpeg_quality": None, "sha256": "0" * 64}


def _manifest_with(bad_path: str) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        lines = [good_manifest_line(), good_manifest_line(bad_path)]
        (root / "manifest.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return build


MANIFESTS = [
    Kind("manifest-parent-traversal", "manifest", "manifest line 2: the image path '../../etc/passwd' must not "
         "contain empty, '.' or '..' parts", _manifest_with("../../etc/passwd")),
    Kind("manifest-absolute-path", "manifest", "manifest line 2: the image path '/etc/passwd' must be relative to "
         "the dataset folder", _manifest_with("/etc/passwd")),
]


# --- requests -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: ``via`` "form" (a logged-in session) or "api" (a token); ``says`` is this channel's wording
    when it differs from the kind's message."""

    via: str
    method: str
    path: str
    status: int
    data: Any = None
    content_type: str | None = None
    says: str | None = None
    settings: dict[str, int] = field(default_factory=dict)


SUBMIT, API_SUBMIT = "/submit/", "/api/v1/submissions/"


def _upload_fields(tmp: Path, **fields: Any) -> dict[str, Any]:
    onnx = tmp / "good.onnx"
    if not onnx.is_file():
        detector_files.write_onnx(onnx, input_size=INPUT_SIZE)
    base = {"name": "my detector", "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE,
            "architecture": "", "file": SimpleUploadedFile("detector.onnx", onnx.read_bytes())}
    return {**base, **fields}


def _both(tmp: Path, status: int = 400, form_says: str | None = None, api_says: str | None = None,
          **fields: Any) -> list[Call]:
    """The same upload through the form and the API, with ``fields`` changed."""
    return [Call("form", "post", SUBMIT, status, _upload_fields(tmp, **fields), says=form_says),
            Call("api", "post", API_SUBMIT, status, _upload_fields(tmp, **fields), says=api_says)]


def _input_sizes(tmp: Path) -> list[Call]:
    form, api = "Enter a whole number.", "A valid integer is required."
    return [call for value in ("abc", "1.5", "true") for call in _both(tmp, form_says=form, api_says=api,
                                                                        input_size=value)]


def _too_large_fields(tmp: Path) -> list[Call]:
    limit = {"DATA_UPLOAD_MAX_MEMORY_SIZE": 50_000}
    return [Call(via, "post", path, 400, _upload_fields(tmp, description="d" * 100_000), settings=limit)
            for via, path in (("form", SUBMIT), ("api", API_SUBMIT))]


def _wrong_methods(tmp: Path) -> list[Call]:
    api, page = 'Method "{}" not allowed.', "This address does not take {} requests"
    return [Call("api", "get", API_SUBMIT, 405, says=api.format("GET")),
            Call("api", "delete", "/api/v1/submissions/1/", 405, says=api.format("DELETE")),
            Call("api", "post", "/api/v1/benchmarks/", 405, says=api.format("POST")),
            Call("form", "post", "/", 405, says=page.format("POST")),
            Call("form", "put", SUBMIT, 405, says=page.format("PUT")),
            Call("form", "post", "/leaderboards/mini/", 405, says=page.format("POST")),
            Call("form", "get", "/accounts/token/rotate/", 405, says=page.format("GET"))]


def _both_ids(pk: str, says_page: str, says_api: str) -> list[Call]:
    return [Call("form", "get", f"/submissions/{pk}/", 404, says=says_page),
            Call("api", "get", f"/api/v1/submissions/{pk}/", 404, says=says_api),
            Call("api", "get", f"/api/v1/submissions/{pk}/results/", 404, says=says_api)]


def _pages(*queries: str, status: int = 400) -> list[Call]:
    return [Call("api", "get", f"/api/v1/benchmarks/?{query}", status) for query in queries]


def _malformed_multipart(tmp: Path) -> list[Call]:
    no_parts, no_boundary = b"--xyz\r\nthis is not a part\r\n", "multipart/form-data"
    return [Call("form", "post", SUBMIT, 400, no_parts, "multipart/form-data; boundary=xyz"),
            Call("api", "post", API_SUBMIT, 400, no_parts, "multipart/form-data; boundary=xyz"),
            Call("form", "post", SUBMIT, 400, b"x", no_boundary, says="The request could not be understood"),
            Call("api", "post", API_SUBMIT, 400, b"x", no_boundary, says="Invalid boundary in multipart")]


_JSON_REFUSED = 'Unsupported media type "application/json" in request. This endpoint reads multipart/form-data'
_NO_SUBMISSION = "There is no submission #"
REQUESTS = [
    Kind("name-10kb", "request", "at most 120 characters", lambda tmp: _both(
        tmp, form_says="Ensure this value has at most 120 characters", api_says="no more than 120 characters",
        name="n" * 10_000)),
    Kind("source-100kb", "request", "100 characters", lambda tmp: _both(tmp, source="s" * 100_000)),
    Kind("fields-over-request-limit", "request", "form fields are larger than the server accepts",
         _too_large_fields),
    Kind("input-size-huge", "request", "less than or equal to 1024", lambda tmp: _both(tmp, input_size="1" + "0" * 30)),
    Kind("input-size-negative", "request", "greater than or equal to 16", lambda tmp: _both(tmp, input_size=-5)),
    Kind("input-size-not-a-number", "request", "whole number", _input_sizes),
    Kind("api-invalid-json", "request", _JSON_REFUSED, lambda tmp: [
        Call("api", "post", API_SUBMIT, 415, '{"benchmark": "mini", ', "application/json")]),
    Kind("api-json-list", "request", _JSON_REFUSED, lambda tmp: [
        Call("api", "post", API_SUBMIT, 415, "[1, 2, 3]", "application/json")]),
    Kind("unknown-benchmark", "request", "nope", lambda tmp: _both(
        tmp, form_says="Select a valid choice", api_says="There is no benchmark 'nope'. Benchmarks: mini.",
        benchmark="nope")),
    Kind("unknown-format", "request", "pickle", lambda tmp: _both(
        tmp, form_says="Select a valid choice. pickle is not one of the available choices.",
        api_says='"pickle" is not a valid choice.', format="pickle")),
    Kind("wrong-method", "request", "This address does not take", _wrong_methods),
    Kind("nonexistent-submission-id", "request", f"{_NO_SUBMISSION}999999.", lambda tmp: _both_ids(
        "999999", f"{_NO_SUBMISSION}999999.", f"{_NO_SUBMISSION}999999.")),
    Kind("non-integer-id", "request", "There is nothing at this address.", lambda tmp: _both_ids(
        "abc", "There is nothing at this address.", "There is nothing at this address.")),
    Kind("id-beyond-bigint", "request", f"{_NO_SUBMISSION}{10**23}.", lambda tmp: _both_ids(
        str(10**23), f"{_NO_SUBMISSION}{10**23}.", f"{_NO_SUBMISSION}{10**23}.")),
    Kind("pagination-not-a-number", "request", "is not a whole number from",
         lambda tmp: _pages("limit=abc", "limit=0", "limit=501", "offset=-1", "offset=1.5")),
    Kind("pagination-beyond-range", "request", "is past the end of the list",
         lambda tmp: _pages("offset=1000", f"offset={10**30}", "limit=10&offset=1", status=404)),
    Kind("unknown-query-parameter", "request", "Unknown query parameter 'page'",
         lambda tmp: _pages("page=2", "limit=5&page=abc")),
    Kind("malformed-multipart", "request", "This field is required", _malformed_multipart),
]

KINDS: list[Kind] = MODELS + IMAGES + MANIFESTS + REQUESTS
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}


def of_family(family: str) -> list[Kind]:
    return [kind for kind in KINDS if kind.family == family]
