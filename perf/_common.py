"""Shared set-up of the perf scripts: a dataset version, a real TorchScript detector, the shard runner.

The shard runner (and torch with it) is imported when a request is built, so the load test stays torch-free."""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.messages import ShardRequest  # noqa: E402
from evaluation.protocols import RANKED_PROTOCOL  # noqa: E402


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", type=Path, help="a dataset version folder (default: the mini benchmark of make run)")
    parser.add_argument("--images", type=int, default=384, help="test images to use (default 384)")
    parser.add_argument("--size", type=int, default=128, help="detector input size (default 128)")
    args = parser.parse_args()
    args.dataset = args.dataset or default_dataset()
    return args


def default_dataset() -> Path:
    for manifest in sorted((ROOT / "var" / "datasets" / "mini").glob("*/manifest.jsonl")):
        if not manifest.parent.name.startswith(("biased", "unbiased", "_")):
            return manifest.parent
    raise SystemExit("No mini benchmark found: run `make run` once (or pass --dataset).")


def resnet_detector(folder: Path) -> Path:
    """A real ResNet-18 (random weights) with one logit, scripted and saved like an upload."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1).eval()
    path = folder / "resnet18.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def request(dataset: Path, artifact: Path, size: int, images: int, protocol: str = RANKED_PROTOCOL,
            config: dict | None = None) -> ShardRequest:
    from evaluation.runner import local_shard_request

    return local_shard_request(artifact, dataset, input_size=size, protocol=protocol,
                               config={"batch_size": 32, **(config or {})}, limit=images)


@contextmanager
def shard_setup(args: argparse.Namespace) -> Iterator[tuple[Path, ShardRequest, list]]:
    """(ResNet-18 artifact, cross-generator shard request, its rows) in a temporary folder."""
    from evaluation.datasets.images import rows_of_split

    with tempfile.TemporaryDirectory() as folder:
        artifact = resnet_detector(Path(folder))
        shard = request(args.dataset, artifact, args.size, args.images)
        yield artifact, shard, list(rows_of_split(shard.manifest_url, "test", 0, shard.last_row))


def timed(work: Callable[[], object], repeats: int = 1) -> float:
    """Seconds of the fastest of ``repeats`` runs (more than one: the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def report(name: str, ratio: float, goal: str, note: str = "") -> None:
    print(f"{name}: ratio {ratio:.2f} (goal {goal}){' — ' + note if note else ''}")
