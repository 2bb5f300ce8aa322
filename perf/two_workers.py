"""(d) Two evaluation processes sharing one submission's shards over one process doing all of them.

Each process runs the shard runner as an evaluation worker would (the broker's few milliseconds per message
are left out). On a machine with C cores, torch in each process uses C threads: two processes compete for
the same cores, so the ratio approaches 2 only with >= 2 × the cores one worker saturates, or one GPU each.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from multiprocessing import get_context
from pathlib import Path

from _common import parse_args, report, request, resnet_detector, timed

from evaluation.runner import run_shard


def _run(job: tuple) -> None:
    import torch

    shard, threads = job
    torch.set_num_threads(threads)
    outcome = run_shard(shard, lambda progress: None)
    assert outcome.status == "done", outcome.error


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with tempfile.TemporaryDirectory() as folder:
        artifact = resnet_detector(Path(folder))
        whole = request(args.dataset, artifact, args.size, args.images)
        half = whole.last_row // 2
        halves = [dataclasses.replace(whole, last_row=half), dataclasses.replace(whole, first_row=half)]
        spawn = get_context("spawn")
        cores = os.cpu_count() or 2
        one = timed(lambda: spawn.Pool(1).map(_run, [(shard, cores) for shard in halves]))
        two = timed(lambda: spawn.Pool(2).map(_run, [(shard, max(1, cores // 2)) for shard in halves]))
    report("2 evaluation workers / 1", one / two, ">= 1.8 where cores allow",
           f"{os.cpu_count()} cores here; one worker uses all of them, two get half each: "
           "the limit is the cores, not the platform")


if __name__ == "__main__":
    main()
