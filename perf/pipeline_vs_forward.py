"""(a) Cross-generator images/s over the same detector's forward-only images/s on pre-decoded tensors.

The shard runner (decode in threads, batch, score, metrics) against the model alone on tensors already in
memory. Goal >= 0.9: the input pipeline should hide behind the model.
"""
from __future__ import annotations

from _common import parse_args, report, shard_setup, timed

from evaluation.datasets.images import image_batches
from evaluation.detectors.formats import ArtifactFormat
from evaluation.detectors.loading import load_detector, pick_device
from evaluation.runner import run_shard


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with shard_setup(args) as (artifact, shard, rows):
        batches = [b for _, b in image_batches(str(args.dataset), iter(rows), size=args.size, batch_size=32)]
        detector = load_detector(artifact, ArtifactFormat.TORCHSCRIPT, input_size=args.size, device=pick_device("auto"))
        detector.scores(batches[0])  # warm-up
        forward = timed(lambda: [detector.scores(b) for b in batches])
        pipeline = timed(lambda: run_shard(shard, lambda progress: None))
    n = len(rows)
    print(f"forward only: {n / forward:.1f} images/s; cross-generator shard: {n / pipeline:.1f} images/s "
          f"({n} images, ResNet-18 at {args.size} px)")
    report("cross-generator / forward-only", forward / pipeline, ">= 0.9",
           "the shard also loads the model, verifies two sha256 and runs the probe batch")


if __name__ == "__main__":
    main()
