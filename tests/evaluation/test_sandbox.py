"""The sandboxed scorer on the real bubblewrap: hostile TorchScript and hostile Python fail without seeing
anything, a hang or a crash becomes plain words within its budget, and the same scorer then scores a good
detector exactly as an eager computation does.

Every hostile case has its control: the same program outside the sandbox does read the file, reach the
socket or get the memory, so each test would fail if the sandbox let it through.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import load_detector, probe_detector
from evaluation.errors import DetectorCrash, DetectorOutputError, DetectorTimeout
from evaluation.sandbox.launch import (
    SandboxUnavailable,
    ScorerLimits,
    bubblewrap_problem,
    require_sandbox,
    scorer_launch,
)
from evaluation.sandbox.scorer import ScorerCache
from tests.detector_files import reference_scores, write_hostile_torchscript, write_torchscript

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
LIMITS = ScorerLimits(probe_seconds=10, min_batch_seconds=4, batch_factor=5, memory_mb=4096, processes=64)
WIRE = ["models_zoo.registry"]

pytestmark = pytest.mark.skipif(bool(bubblewrap_problem()) and not require_sandbox(),
                                reason=f"no sandbox here: {bubblewrap_problem()}")


@pytest.fixture(scope="module")
def scorers() -> ScorerCache:
    cache = ScorerCache(LIMITS, wire=WIRE)
    yield cache
    cache.close()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_torchscript(tmp_path_factory.mktemp("good") / "good.pt", seed=3)


def _open(cache: ScorerCache, model: Path, name: str | None = None):
    return cache.open_child((name or model.name,), model, fmt=ArtifactFormat.TORCHSCRIPT, input_size=SIZE,
                            device=torch.device("cpu"))


def _assert_scores_right(cache: ScorerCache, good: Path) -> None:
    """After whatever came before, the same cache scores a good detector as the eager reference does."""
    images = torch.rand(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))
    detector = _open(cache, good, f"good-{time.monotonic()}")  # a fresh child each time
    assert detector.isolation["sandbox"] == "bubblewrap" and detector.isolation["full"]
    np.testing.assert_allclose(detector.scores(images), reference_scores(images, seed=3), rtol=1e-5, atol=1e-5)


def _hostile(tmp_path: Path, kind: str, **options: object) -> Path:
    return write_hostile_torchscript(tmp_path / f"{kind}.pt", kind, **options)


def _in_process(model: Path) -> np.ndarray:
    detector = load_detector(model, ArtifactFormat.TORCHSCRIPT, input_size=SIZE, device=torch.device("cpu"))
    probe_detector(detector)
    return detector.scores(torch.zeros(2, 3, SIZE, SIZE))


@pytest.mark.parametrize("target", ["/etc/passwd", "manifest"])
def test_a_model_that_reads_a_file_fails_without_seeing_it(scorers: ScorerCache, good: Path, mini_root: Path,
                                                           tmp_path: Path, target: str) -> None:
    path = str(mini_root / "manifest.jsonl") if target == "manifest" else target
    model = _hostile(tmp_path, "reads_file", target=path)
    assert np.all(_in_process(model) > 100)  # control: outside the sandbox it reads the bytes into its scores
    with pytest.raises(DetectorOutputError, match="unable to open file.*No such file"):
        _open(scorers, model)
    _assert_scores_right(scorers, good)


def _run_sandboxed(code: str, model: Path, limits: ScorerLimits = LIMITS) -> subprocess.CompletedProcess[str]:
    """Any Python under exactly the scorer's sandbox (the same launch, another program)."""
    launch = scorer_launch(model, requests=0, replies=1, cuda=False, limits=limits, wire=WIRE,
                           command=[sys.executable, "-c", code])
    try:
        return subprocess.run(launch.argv, env=launch.env, preexec_fn=launch.preexec, capture_output=True, text=True,
                              timeout=120)
    finally:
        launch.cleanup()


def test_code_in_the_sandbox_sees_only_its_own_files(good: Path, mini_root: Path) -> None:
    probe = ("import os, sys\n"
             "for path in sys.argv[1:] or []: pass\n"
             f"paths = ['/etc/passwd', {str(mini_root)!r}, {str(Path.home())!r}, '/work', '/var', '/sandbox/model']\n"
             "print({p: os.path.exists(p) for p in paths}, os.getuid(), os.listdir('/tmp'))\n"
             "open('/sandbox/model', 'ab')\n")
    result = _run_sandboxed(probe, good)
    seen = result.stdout.strip()
    assert f"'/etc/passwd': False, {str(mini_root)!r}: False" in seen, seen
    # An empty /tmp, but for the parents of the read-only binds of the project and its Python when they live there.
    bound_under_tmp = sorted({Path(p).resolve().relative_to("/tmp").parts[0] for p in (ROOT, sys.prefix, sys.base_prefix)
                              if Path(p).resolve().is_relative_to("/tmp")})
    assert f"'/sandbox/model': True}} 65534 {bound_under_tmp}" in seen, seen
    assert "Read-only file system" in result.stderr  # the one model file cannot be changed either
    assert Path("/etc/passwd").exists() and mini_root.exists()  # control: the worker sees both


def test_code_in_the_sandbox_sees_none_of_the_worker_s_credentials(good: Path, monkeypatch) -> None:
    from evaluation.storage import ENDPOINT_VARIABLE, READ_KEY_VARIABLES

    secrets = {name: f"secret-{index}-value" for index, name in enumerate((*READ_KEY_VARIABLES, ENDPOINT_VARIABLE,
                                                                           "CELERY_BROKER_URL", "AWS_SECRET_ACCESS_KEY"))}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = _run_sandboxed("import os\nprint(sorted(os.environ.items()))\n", good)
    seen = result.stdout
    assert result.returncode == 0 and "PATH" in seen, result.stderr
    assert not any(name in seen or value in seen for name, value in secrets.items()), seen


def test_code_in_the_sandbox_reaches_no_network(good: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5):  # control: the worker reaches it
        pass
    probe = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n    print('reached')\n"
             "except OSError as error:\n    print('refused', error)\n"
             "try:\n    socket.getaddrinfo('pypi.org', 443)\n    print('resolved')\nexcept OSError as error:\n"
             "    print('no names', error)\n")
    result = _run_sandboxed(probe, good)
    server.close()
    assert "refused" in result.stdout and "no names" in result.stdout, result.stdout + result.stderr
    assert len(accepted) == 1  # only the control's connection ever arrived


def test_a_fork_bomb_meets_the_process_limit(good: Path) -> None:
    probe = ("import os, time\ncount = 0\ntry:\n    while count < 1000:\n        if os.fork() == 0:\n"
             "            time.sleep(30)\n            os._exit(0)\n        count += 1\n"
             "except OSError as error:\n    print('stopped after', count, type(error).__name__)\n")
    result = _run_sandboxed(probe, good)
    assert "stopped after" in result.stdout, result.stdout + result.stderr
    assert int(result.stdout.split()[2]) < LIMITS.processes


def test_a_60_gb_allocation_is_refused(scorers: ScorerCache, good: Path, tmp_path: Path) -> None:
    with pytest.raises(DetectorOutputError, match="can't allocate memory"):
        _open(scorers, _hostile(tmp_path, "allocate", gigabytes=60))
    _assert_scores_right(scorers, good)


def test_the_memory_limit_is_the_sandbox_s(scorers: ScorerCache, good: Path, tmp_path: Path) -> None:
    model = _hostile(tmp_path, "allocate", gigabytes=6)  # above the 4 GiB limit, below this machine's memory
    assert len(_in_process(model)) == 2  # control: the worker's own process may allocate it
    with pytest.raises(DetectorOutputError, match="can't allocate memory"):
        _open(scorers, model)
    _assert_scores_right(scorers, good)


def test_an_infinite_loop_is_stopped_within_the_probe_budget(scorers: ScorerCache, good: Path,
                                                            tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DetectorTimeout, match=r"did not answer within 10 s while scoring its probe batch"):
        _open(scorers, _hostile(tmp_path, "loop"))
    assert time.monotonic() - started < 10 * LIMITS.probe_seconds  # seconds, not the hour of the task limit
    _assert_scores_right(scorers, good)


def _endless_onnx_loop(path: Path) -> Path:
    """An ONNX detector whose graph runs a Loop of 2**63 - 1 iterations, seeded by the input so that no constant
    folding can evaluate it at load: onnxruntime runs it until stopped."""
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["images"], ["seed"], keepdims=0),
         helper.make_node("Loop", ["trips", "yes", "seed"], ["final"], body=body),
         helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
         helper.make_node("Mul", ["final", "zero"], ["nothing"]),
         helper.make_node("Add", ["mean", "nothing"], ["logits"])],
        "endless",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [2**63 - 1]),
         helper.make_tensor("yes", TensorProto.BOOL, [], [True]),
         helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_an_endless_onnx_loop_is_stopped_within_the_probe_budget(scorers: ScorerCache, good: Path,
                                                                 tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DetectorTimeout, match=r"did not answer within 10 s while scoring its probe batch"):
        scorers.open_child(("endless.onnx",), _endless_onnx_loop(tmp_path / "endless.onnx"), fmt=ArtifactFormat.ONNX,
                           input_size=SIZE, device=torch.device("cpu"))
    assert time.monotonic() - started < 10 * LIMITS.probe_seconds
    _assert_scores_right(scorers, good)


def test_a_loop_after_the_probe_is_stopped_within_the_batch_budget(scorers: ScorerCache, good: Path,
                                                                  tmp_path: Path) -> None:
    detector = _open(scorers, _hostile(tmp_path, "loop_after_probe"))  # its probe batch of two passes
    with pytest.raises(DetectorTimeout, match=r"within 4 s while scoring a batch of 8 images"):
        detector.scores(torch.rand(8, 3, SIZE, SIZE))
    assert not detector.process.alive
    _assert_scores_right(scorers, good)


def test_a_segfault_becomes_plain_words(scorers: ScorerCache, good: Path, tmp_path: Path) -> None:
    model = _hostile(tmp_path, "segfault")
    control = subprocess.run([sys.executable, "-c", "import sys, torch; m = torch.jit.load(sys.argv[1]); "
                              "m(torch.zeros(2, 3, 32, 32))", str(model)], capture_output=True)
    assert control.returncode == -11  # control: it really does crash a process
    with pytest.raises(DetectorCrash, match=r"ended by SIGSEGV \(a segmentation fault\) while scoring its probe"):
        _open(scorers, model)
    _assert_scores_right(scorers, good)


@pytest.mark.parametrize(("kind", "message"), [
    ("inf", "non-finite values"), ("int", "int64 values; logits must be floats"),
    ("fewer", r"shape \(1,\) for a batch of 2 images"), ("wide", r"shape \(2, 3072\) for a batch of 2"),
])
def test_outputs_that_break_the_contract_are_refused(scorers: ScorerCache, good: Path, tmp_path: Path, kind: str,
                                                     message: str) -> None:
    with pytest.raises(DetectorOutputError, match=message):
        _open(scorers, _hostile(tmp_path, kind))
    _assert_scores_right(scorers, good)


def test_a_failed_detector_fails_its_other_shards_at_once(scorers: ScorerCache, tmp_path: Path) -> None:
    model = _hostile(tmp_path, "loop")
    with pytest.raises(DetectorTimeout):
        _open(scorers, model, "the same artifact")
    started = time.monotonic()
    with pytest.raises(DetectorTimeout, match="failed the same way on an earlier shard"):
        _open(scorers, model, "the same artifact")
    assert time.monotonic() - started < LIMITS.probe_seconds  # no second wait for the budget


def test_one_child_serves_every_shard_of_an_artifact(scorers: ScorerCache, good: Path) -> None:
    first = _open(scorers, good, "one artifact")
    again = _open(scorers, good, "one artifact")
    assert again is first and first.process.alive


def test_the_child_is_given_no_path_but_the_model_s(good: Path, mini_root: Path) -> None:
    launch = scorer_launch(good, requests=3, replies=4, cuda=False, limits=LIMITS, wire=WIRE)
    launch.cleanup()
    command = launch.argv[launch.argv.index("--") + 1:]
    assert "/sandbox/model" not in command and str(good) not in command  # the path arrives in the load frame
    assert not any(str(mini_root) in part for part in [*launch.argv, *launch.env.values()])
    assert launch.model_path == "/sandbox/model" and f"{good}" in launch.argv  # bound there, read-only
    assert launch.argv[launch.argv.index(str(good)) - 1] == "--ro-bind"


def test_without_bubblewrap_the_child_still_runs_limited_and_says_so(good: Path, tmp_path: Path) -> None:
    """On a machine without bwrap (PATH without it): the scorer still works, in a process of its own under
    the limits, and its isolation says what it lacked; with SPECTRA_REQUIRE_SANDBOX=1 it refuses to start."""
    empty = tmp_path / "bin"
    empty.mkdir()
    code = ("import sys, torch, evaluation.sandbox.scorer as s, evaluation.detectors.formats as f\n"
            "cache = s.ScorerCache(wire=['models_zoo.registry'])\n"
            f"d = cache.open_child(('x',), __import__('pathlib').Path({str(good)!r}), fmt=f.ArtifactFormat.TORCHSCRIPT,"
            f" input_size={SIZE}, device=torch.device('cpu'))\n"
            "print(d.isolation['sandbox'], d.isolation['full'], d.isolation['limits'].get('memory_mb'))\n"
            "print(d.scores(torch.zeros(2, 3, 32, 32)).tolist())\ncache.close()\n")
    env = {"PATH": str(empty), "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.stdout.splitlines()[0] == "process False 16384", result.stdout + result.stderr
    expected = reference_scores(torch.zeros(2, 3, SIZE, SIZE), seed=3)
    np.testing.assert_allclose(eval(result.stdout.splitlines()[1]), expected, rtol=1e-5, atol=1e-5)
    refused = subprocess.run([sys.executable, "-c", code], env={**env, "SPECTRA_REQUIRE_SANDBOX": "1"},
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode and SandboxUnavailable.__name__ in refused.stderr
    assert "bubblewrap (bwrap) is not installed" in refused.stderr
