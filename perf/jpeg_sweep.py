"""(c) A JPEG sweep of k qualities over k clean passes: each image is decoded once and re-encoded per quality."""
from __future__ import annotations

import tempfile
from pathlib import Path

from _common import parse_args, report, request, resnet_detector, timed

from evaluation.protocols import get_protocol
from evaluation.runner import run_shard


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    qualities = get_protocol("jpeg-robustness").default_config["qualities"]
    with tempfile.TemporaryDirectory() as folder:
        artifact = resnet_detector(Path(folder))
        clean = request(args.dataset, artifact, args.size, args.images)
        sweep = request(args.dataset, artifact, args.size, args.images, "jpeg-robustness", {"qualities": qualities})
        one_clean = timed(lambda: run_shard(clean, lambda progress: None))
        swept = timed(lambda: run_shard(sweep, lambda progress: None))
    report(f"JPEG sweep of {len(qualities)} qualities / {len(qualities)} clean passes", swept / (len(qualities) * one_clean),
           "<= 1.2", "each clean pass also pays the model load and sha256 checks once")


if __name__ == "__main__":
    main()
