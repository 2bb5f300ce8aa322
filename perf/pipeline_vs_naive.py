"""(b) Cross-generator images/s over a naive loop: PIL open, transform, model, one image at a time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from _common import parse_args, report, shard_setup, timed
from PIL import Image

from evaluation.runner import run_shard


def naive(dataset: Path, artifact: Path, rows: list, size: int) -> None:
    model = torch.jit.load(str(artifact)).eval()
    with torch.inference_mode():
        for indexed in rows:
            with Image.open(dataset / indexed.row.path) as image:
                rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            tensor = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
            torch.sigmoid(model(tensor))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with shard_setup(args) as (artifact, shard, rows):
        slow = timed(lambda: naive(args.dataset, artifact, rows, args.size))
        fast = timed(lambda: run_shard(shard, lambda progress: None))
    report("cross-generator / naive loop", slow / fast, ">= 3",
           f"{torch.get_num_threads()} CPU threads; batching gains most on a GPU, where one image per call leaves "
           "it idle; on a small CPU the convolutions already use every core at batch 1")


if __name__ == "__main__":
    main()
