"""(c) A JPEG sweep of k qualities over k clean passes: each image is decoded once and re-encoded per quality.
And the wild protocol's chain sweep (clean, each image's own chain, the presets) over one clean pass and over as
many clean passes as it has conditions: what the chains cost on the decoding threads beyond the model's passes."""
from __future__ import annotations

import tempfile
from pathlib import Path

from _common import parse_args, report, request, resnet_detector, timed

from evaluation.protocols import get_protocol, wild
from evaluation.runner import run_shard


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    qualities = get_protocol("jpeg-robustness").default_config["qualities"]
    with tempfile.TemporaryDirectory() as folder:
        artifact = resnet_detector(Path(folder))
        clean = request(args.dataset, artifact, args.size, args.images)
        sweep = request(args.dataset, artifact, args.size, args.images, "jpeg-robustness", {"qualities": qualities})
        chains = request(args.dataset, artifact, args.size, args.images, wild.NAME, {})
        one_clean = timed(lambda: run_shard(clean, lambda progress: None))
        swept = timed(lambda: run_shard(sweep, lambda progress: None))
        chained = timed(lambda: run_shard(chains, lambda progress: None))
    report(f"JPEG sweep of {len(qualities)} qualities / {len(qualities)} clean passes", swept / (len(qualities) * one_clean),
           "<= 1.2", "each clean pass also pays the model load and sha256 checks once")
    conditions = len(wild.conditions(wild.PROTOCOL.default_config))
    report(f"wild chain sweep ({conditions} conditions) / one clean pass", chained / one_clean, "(cost, no goal)")
    report(f"wild chain sweep / {conditions} clean passes", chained / (conditions * one_clean), "<= 1.2",
           "above 1: the chains cost the decoding threads more than the model's extra passes")


if __name__ == "__main__":
    main()
