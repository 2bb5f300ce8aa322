"""sniff_artifact on real files of every kind an upload can be, accepted or refused."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy
import pytest
import torch

from evaluation.detectors.formats import ArtifactFormat, sniff_artifact
from evaluation.errors import ArtifactRejected
from tests import detector_files

REPO = Path(__file__).resolve().parents[2]
EXPORT_ADVICE = ("torch.onnx.export", "torch.jit.save")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


def sniff_path(path: Path, **kwargs: object) -> ArtifactFormat:
    with path.open("rb") as handle:
        return sniff_artifact(handle, **kwargs)  # type: ignore[arg-type]


def rejection(path: Path) -> str:
    with pytest.raises(ArtifactRejected) as caught:
        sniff_path(path)
    return caught.value.message


def assert_says_how_to_export(message: str) -> None:
    for command in EXPORT_ADVICE:
        assert command in message, message


# --- accepted ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["logit", "logit1", "two"])
def test_torchscript_is_recognised(files: Path, output: str) -> None:
    path = detector_files.write_torchscript(files / f"ts_{output}.pt", output=output)  # type: ignore[arg-type]
    assert sniff_path(path) is ArtifactFormat.TORCHSCRIPT


@pytest.mark.parametrize("fixed_batch", [None, 1])
def test_onnx_is_recognised(files: Path, fixed_batch: int | None) -> None:
    path = detector_files.write_onnx(files / f"m_{fixed_batch}.onnx", fixed_batch=fixed_batch)
    assert sniff_path(path) is ArtifactFormat.ONNX


def test_position_is_restored(files: Path) -> None:
    path = detector_files.write_onnx(files / "pos.onnx")
    with path.open("rb") as handle:
        handle.seek(7)
        sniff_artifact(handle)
        assert handle.tell() == 7


class CountingReader(io.RawIOBase):
    """A file wrapper that counts the bytes actually read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.bytes_read = raw, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def test_large_onnx_payloads_are_skipped_not_read(files: Path) -> None:
    # A 30 MB doc_string appended as an extra top-level field (valid protobuf: later fields merge).
    payload_len = 30_000_000
    path = files / "big.onnx"
    path.write_bytes(detector_files.write_onnx(files / "small.onnx").read_bytes() + b"\x32" + _varint(payload_len))
    with path.open("ab") as handle:
        handle.truncate(path.stat().st_size + payload_len)
    with path.open("rb") as raw:
        reader = CountingReader(raw)
        assert sniff_artifact(reader) is ArtifactFormat.ONNX  # type: ignore[arg-type]
    assert reader.bytes_read < 4096


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TorchScript's upstream deprecation notice
def test_large_torchscript_is_recognised_from_its_directory(files: Path) -> None:
    module = torch.jit.script(torch.nn.Linear(2000, 2000))  # 16 MB of weights
    path = files / "big_ts.pt"
    torch.jit.save(module, str(path))
    with path.open("rb") as raw:
        reader = CountingReader(raw)
        assert sniff_artifact(reader) is ArtifactFormat.TORCHSCRIPT  # type: ignore[arg-type]
    assert reader.bytes_read < 100_000


# --- refused: pickles and code-carrying archives -------------------------------------------------------


@pytest.mark.parametrize("writer", ["write_pickled_checkpoint", "write_pickled_model", "write_legacy_pickle"])
def test_pickled_checkpoints_are_refused(files: Path, writer: str) -> None:
    path = getattr(detector_files, writer)(files / f"{writer}.pt")
    message = rejection(path)
    assert "pickled" in message and "never unpickles" in message
    assert_says_how_to_export(message)


def test_legacy_tar_checkpoint_is_refused(files: Path) -> None:
    path = files / "ancient.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("pickle")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"\x80\x02N"))
    assert "pickled" in rejection(path)


def test_export_archive_is_refused(files: Path) -> None:
    message = rejection(detector_files.write_export_archive(files / "model.pt2"))
    assert "torch.export" in message and "code-execution" in message
    assert_says_how_to_export(message)


def test_torch_package_is_refused(files: Path) -> None:
    message = rejection(detector_files.write_torch_package(files / "package.pt"))
    assert "torch.package" in message
    assert_says_how_to_export(message)


def write_safetensors(path: Path, metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    save_file(detector_files.TinyDetector().state_dict(), str(path), metadata=metadata)
    return path


def test_safetensors_is_recognised_and_its_architecture_read(files: Path) -> None:
    from evaluation.detectors.formats import artifact_architecture

    path = write_safetensors(files / "named.safetensors", {"spectra.architecture": "resnet50"})
    assert sniff_path(path, declared="safetensors") is ArtifactFormat.SAFETENSORS
    with path.open("rb") as handle:
        assert artifact_architecture(handle) == "resnet50" == artifact_architecture(handle, "resnet50")
        with pytest.raises(ArtifactRejected, match="metadata says it holds weights of 'resnet50'"):
            artifact_architecture(handle, "swin-t")
        assert handle.tell() == 0
    with write_safetensors(files / "bare.safetensors").open("rb") as handle:
        assert artifact_architecture(handle, "swin-t") == "swin-t"
        with pytest.raises(ArtifactRejected, match="name the model zoo architecture"):
            artifact_architecture(handle)


def _rewrite_header(source: Path, target: Path, edit) -> Path:  # noqa: ANN001 - a test helper
    import json
    import struct

    raw = source.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    edit(header)
    encoded = json.dumps(header).encode()
    target.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + length:])
    return target


def _first_tensor(header: dict) -> dict:
    return next(v for k, v in sorted(header.items()) if k != "__metadata__")


@pytest.mark.parametrize(("edit", "says"), [
    (lambda h: _first_tensor(h).update(dtype="Q7"), "unsupported dtype"),
    (lambda h: _first_tensor(h).update(shape=[10**6]), "takes"),
    (lambda h: _first_tensor(h).update(data_offsets=[0, 1]), "takes"),
    (lambda h: h.update(extra={"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}), "overlap or leave gaps"),
    (lambda h: h.update(__metadata__={"x": 1}), "map of strings"),
])
def test_a_damaged_safetensors_header_is_refused_with_its_fault(files: Path, edit, says: str) -> None:  # noqa: ANN001
    path = _rewrite_header(write_safetensors(files / "good.safetensors"), files / "bad.safetensors", edit)
    message = rejection(path)
    assert "safetensors" in message and says in message, message


def test_a_truncated_safetensors_file_is_refused(files: Path) -> None:
    good = write_safetensors(files / "whole.safetensors").read_bytes()
    cut = files / "cut.safetensors"
    cut.write_bytes(good[:-8])
    assert "the data section has" in rejection(cut)
    cut.write_bytes(good[:40])
    assert "truncated or damaged" in rejection(cut)


# --- refused: not a model at all ---------------------------------------------------------------------


def test_empty_file_is_refused(files: Path) -> None:
    path = files / "empty.onnx"
    path.write_bytes(b"")
    message = rejection(path)
    assert "empty" in message
    assert_says_how_to_export(message)


@pytest.mark.parametrize("prefix", [b"", b"\x08\x07", b"\x08\x07\x3a\x10"])
def test_random_bytes_are_refused(files: Path, prefix: bytes) -> None:
    # The prefixes start like an ONNX ModelProto (ir_version, then a graph field) to exercise the walk.
    path = files / "noise.bin"
    path.write_bytes(prefix + numpy.random.default_rng(0).bytes(10_000))
    message = rejection(path)
    assert "not a TorchScript archive, an ONNX model or a safetensors file" in message
    assert_says_how_to_export(message)


def test_zip_of_text_files_is_refused(files: Path) -> None:
    path = files / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
        archive.writestr("notes/code/model.py", "print('hi')")
    message = rejection(path)
    assert "not a TorchScript archive" in message and "upload the model file itself" in message
    assert_says_how_to_export(message)


def test_damaged_zip_is_refused(files: Path) -> None:
    path = files / "damaged.pt"
    path.write_bytes(detector_files.write_torchscript(files / "whole.pt").read_bytes()[:500])
    assert "damaged or truncated zip" in rejection(path)


def test_truncated_onnx_is_refused(files: Path) -> None:
    whole = detector_files.write_onnx(files / "whole.onnx").read_bytes()
    path = files / "cut.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    message = rejection(path)
    assert "ONNX" in message and "truncated" in message and "Upload the complete file" in message


def test_onnx_with_trailing_garbage_is_refused(files: Path) -> None:
    path = files / "trailing.onnx"
    path.write_bytes(detector_files.write_onnx(files / "t.onnx").read_bytes() + b"\x4a\x00")  # field 9
    assert "not a TorchScript archive, an ONNX model or a safetensors file" in rejection(path)


def test_protobuf_without_graph_is_refused(files: Path) -> None:
    path = files / "nograph.onnx"
    path.write_bytes(b"\x08\x08" + b"\x12\x07pytorch")  # ir_version and producer_name, no graph
    assert "not a TorchScript archive, an ONNX model or a safetensors file" in rejection(path)


# --- declared format ---------------------------------------------------------------------------------


def test_declared_format_that_matches_is_accepted(files: Path) -> None:
    path = detector_files.write_onnx(files / "declared.onnx")
    assert sniff_path(path, declared=ArtifactFormat.ONNX) is ArtifactFormat.ONNX
    assert sniff_path(path, declared="onnx") is ArtifactFormat.ONNX


def test_declared_format_mismatch_says_what_the_file_is(files: Path) -> None:
    onnx_path = detector_files.write_onnx(files / "really.onnx")
    with pytest.raises(ArtifactRejected, match="declared as TorchScript but it is an ONNX model"):
        sniff_path(onnx_path, declared=ArtifactFormat.TORCHSCRIPT)
    ts_path = detector_files.write_torchscript(files / "really.pt")
    with pytest.raises(ArtifactRejected, match="declared as ONNX but it is a TorchScript archive"):
        sniff_path(ts_path, declared=ArtifactFormat.ONNX)


def test_refusal_reason_wins_over_declared_format(files: Path) -> None:
    path = detector_files.write_pickled_checkpoint(files / "declared_ckpt.pt")
    with pytest.raises(ArtifactRejected, match="pickled"):
        sniff_path(path, declared=ArtifactFormat.TORCHSCRIPT)


# --- the web process must not load torch -------------------------------------------------------------


def test_formats_module_imports_no_ml_runtime() -> None:
    code = (
        "import sys, evaluation.detectors.formats\n"
        "loaded = {'torch', 'onnx', 'onnxruntime'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
