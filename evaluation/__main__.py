"""Evaluate a detector file on a local dataset version without the web app; print what the site would show.

    python -m evaluation detector.onnx /data/mini/original [--input-size 64] [--json]

The same path as the platform: the runner scores the split (verifying both files' sha256 first), then
``evaluation.summary`` computes every metric and its 95 % bootstrap interval from the scores.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path

from evaluation.datasets.images import count_split
from evaluation.detectors.formats import ArtifactFormat
from evaluation.errors import EvaluationError
from evaluation.messages import ShardProgress
from evaluation.metrics import MEAN_ACCURACY, ScoreKind
from evaluation.protocols import RANKED_PROTOCOL, get_protocol, list_protocols
from evaluation.runner import local_shard_request, run_shard
from evaluation.summary import summary_from_scores
from evaluation.version import EVALUATOR_VERSION

SHOWN = ("acc_real", "acc_generated", MEAN_ACCURACY, f"{MEAN_ACCURACY}_carried", "ap", "roc_auc", "tpr_at_1pct_fpr")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n\n")[0])
    parser.add_argument("detector", type=Path, help="an ONNX, TorchScript or safetensors file (the upload formats)")
    parser.add_argument("dataset", type=Path, help="a dataset version folder: images plus manifest.jsonl")
    parser.add_argument("--format", choices=[f.value for f in ArtifactFormat], help="default: read from the bytes")
    parser.add_argument("--input-size", type=int, default=224, help="the detector's declared H = W (default 224)")
    parser.add_argument("--architecture", default="", help="the zoo architecture of a safetensors file "
                        "(default: the one its metadata names)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--protocol", default=RANKED_PROTOCOL, help=f"one of {', '.join(list_protocols())}")
    parser.add_argument("--source", help="the generator it was trained on (fixes the carried threshold)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per interval")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _table(report: dict) -> str:
    lines = [f"{'subset':<16}" + "".join(f"{name:>22}" for name in SHOWN)]
    for subset, numbers in report["results"].items():
        cells = []
        for name in SHOWN:
            value, bounds = numbers["metrics"].get(name), numbers["intervals"].get(name)
            text = "—" if value is None else f"{value:.4f}"
            cells.append(f"{text + (f' [{bounds[0]:.3f},{bounds[1]:.3f}]' if bounds else ''):>22}")
        lines.append(f"{subset:<16}" + "".join(cells))
    trace = report["provenance"]
    lines.append(f"manifest {trace['manifest_sha256']} · artifact {trace['artifact_sha256']} · evaluator "
                 f"{trace['evaluator_version']} · {trace['protocol']} v{trace['protocol_version']}")
    return "\n".join(lines)


def _wire_zoo_architectures() -> None:
    # Like the evaluation worker, the CLI is an evaluating process: it wires in the zoo's architectures for
    # safetensors files. The zoo sits above this library, so it is looked up by name, never imported here.
    importlib.import_module("models_zoo.registry")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _wire_zoo_architectures()
    try:
        request = local_shard_request(
            args.detector, args.dataset, input_size=args.input_size, protocol=args.protocol, split=args.split,
            config={"batch_size": args.batch_size}, declared_format=args.format, device=args.device,
            architecture=args.architecture)
    except (EvaluationError, OSError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2

    def progress(update: ShardProgress) -> None:
        print(f"\r{update.stage}: {update.done}/{update.total}", end="", file=sys.stderr, flush=True)

    requests = [request]
    for split in get_protocol(request.protocol).fitting_splits:  # e.g. the carried threshold's validation split
        rows = count_split(request.manifest_url, split)
        if rows:
            requests.append(dataclasses.replace(request, split=split, last_row=rows))
    row_ids: list[int] = []
    scores: list[float] = []
    for shard in requests:
        outcome = run_shard(shard, progress)
        print(file=sys.stderr)
        if outcome.status != "done":
            print(f"error ({outcome.error_kind}): {outcome.error}", file=sys.stderr)
            return 1
        row_ids += outcome.row_ids
        scores += outcome.scores
    summary = summary_from_scores(protocol=request.protocol, config={"source": args.source},
                                  manifest_url=request.manifest_url, split={r.split for r in requests},
                                  row_ids=row_ids, scores=scores, score_kind=ScoreKind.LOGIT, resamples=args.resamples)
    report = {
        "provenance": {"manifest_sha256": request.manifest_sha256, "artifact_sha256": request.artifact_sha256,
                       "evaluator_version": EVALUATOR_VERSION, "protocol": request.protocol,
                       "protocol_version": request.protocol_version, "split": request.split},
        "results": {s: {"metrics": m, "intervals": summary.intervals.get(s, {})} for s, m in summary.metrics.items()},
    }
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
