"""Evaluate a detector file on a local dataset version without the web app; print what the site would show.

    python -m evaluation detector.onnx /data/mini/original [--input-size 64] [--json]

The same path as the platform: the runner scores the split (verifying both files' sha256 first), then
``evaluation.summary`` computes every metric and its 95 % bootstrap interval from the scores.

Every result on the site shows the command that reproduces it: the protocol, its version and config, the shard
size, the resamples, and the sha256 of both files and the evaluator version it expects, refused when they differ.
Run on the same files, it prints the stored numbers to the last digit: the same shards give the detector the
same batches, and so the same logits.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path

import numpy as np

from evaluation.datasets.images import count_split
from evaluation.detectors.formats import ArtifactFormat
from evaluation.errors import EvaluationError
from evaluation.messages import ShardProgress, ShardRequest
from evaluation.metrics import MEAN_ACCURACY, ScoreKind
from evaluation.protocols import RANKED_PROTOCOL, get_protocol, list_protocols
from evaluation.protocols.base import shard_ranges
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
    reproduce = parser.add_argument_group("reproducing a result (the site's reproduce command sets these)")
    reproduce.add_argument("--config", type=_json_object, default={}, help="the protocol's settings over its "
                           "defaults, a JSON object (seed included); --batch-size is its batch_size")
    reproduce.add_argument("--shard-images", type=int, default=0, help="score each split in shards of this many "
                           "rows, as the platform did (default: one shard)")
    reproduce.add_argument("--no-validation", action="store_true", help="do not score the validation split (the "
                           "platform skipped it: no carried threshold)")
    for name in ("artifact-sha256", "manifest-sha256", "protocol-version", "evaluator-version"):
        reproduce.add_argument(f"--expect-{name}", help=f"refuse unless the {name.replace('-', ' ')} is this")
    return parser


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object is needed, e.g. '{\"seed\": 0}'")
    return value


def _config_errors(protocol: str, config: dict) -> list[str]:
    """What is wrong with ``--config`` against the protocol's defaults: unknown names and values of another type."""
    defaults = get_protocol(protocol).default_config
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        return [f"{protocol} has no setting {', '.join(map(repr, unknown))}; its settings are {', '.join(sorted(defaults))}"]
    return [f"{name} must be like {defaults[name]!r}, not {value!r}" for name, value in config.items()
            if not _same_kind(value, defaults[name])]


def _same_kind(value: object, default: object) -> bool:
    """Whether ``value`` may replace ``default`` (None stands for anything; an int may stand for a float)."""
    if value is None or default is None:
        return True
    if isinstance(default, float) and not isinstance(value, bool):
        return isinstance(value, (int, float))
    return type(value) is type(default)


def _unexpected(args: argparse.Namespace, request: ShardRequest) -> list[str]:
    """What differs from the versions and hashes the command expects."""
    found = {"artifact-sha256": request.artifact_sha256, "manifest-sha256": request.manifest_sha256,
             "protocol-version": str(request.protocol_version), "evaluator-version": EVALUATOR_VERSION}
    return [f"the {name.replace('-', ' ')} is {found[name]}, the result was computed with {wanted}"
            for name in found if (wanted := getattr(args, f"expect_{name.replace('-', '_')}")) not in (None, found[name])]


def _shards(request: ShardRequest, args: argparse.Namespace) -> list[ShardRequest]:
    """The evaluated split's shards, then each fitting split's (the carried threshold's validation split)."""
    splits = [(request.split, request.last_row)]
    if not args.no_validation:
        splits += [(s, rows) for s in get_protocol(request.protocol).fitting_splits
                   if (rows := count_split(request.manifest_url, s))]
    if get_protocol(request.protocol).analysis:  # one shard over the split's sample, as on the platform
        return [dataclasses.replace(request, split=split, first_row=0, last_row=rows) for split, rows in splits]
    return [dataclasses.replace(request, split=split, first_row=first, last_row=last) for split, rows in splits
            for first, last in shard_ranges(rows, args.shard_images or rows)]


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


def _score(requests: list[ShardRequest]) -> tuple[list[int], np.ndarray, dict] | str:
    """Row ids, K×N logits and the last shard's analysis output; or what went wrong."""
    row_ids: list[int] = []
    scores: list[np.ndarray] = []
    analysis: dict = {}

    def progress(update: ShardProgress) -> None:
        print(f"\r{update.stage}: {update.done}/{update.total}", end="", file=sys.stderr, flush=True)

    for shard in requests:
        outcome = run_shard(shard, progress)
        print(file=sys.stderr)
        if outcome.status != "done":
            return f"error ({outcome.error_kind or outcome.status}): {outcome.error}"
        if not outcome.row_ids:  # an empty split
            continue
        row_ids += outcome.row_ids
        scores.append(np.asarray(outcome.scores, dtype=np.float64).reshape(-1, len(outcome.row_ids)))
        analysis = outcome.analysis
    if not scores:
        return "error: the split holds no images"
    return row_ids, np.concatenate(scores, axis=1), analysis


def _report(request: ShardRequest, args: argparse.Namespace, requests: list[ShardRequest], row_ids: list[int],
            scores: np.ndarray, analysis: dict) -> dict:
    spec = get_protocol(request.protocol)
    config = {**args.config, "source": args.source}
    summary = summary_from_scores(protocol=request.protocol, config=config, manifest_url=request.manifest_url,
                                  split={r.split for r in requests}, row_ids=row_ids,
                                  scores=scores if len(scores) > 1 else scores[0], score_kind=ScoreKind.LOGIT,
                                  resamples=args.resamples)
    numbers = dict(summary.metrics)
    if spec.summarise_analysis is not None:
        numbers.update(spec.summarise_analysis(analysis, {**spec.default_config, **request.config}))
    return {
        "provenance": {"manifest_sha256": request.manifest_sha256, "artifact_sha256": request.artifact_sha256,
                       "evaluator_version": EVALUATOR_VERSION, "protocol": request.protocol,
                       "protocol_version": request.protocol_version, "split": request.split},
        "results": {key: {"metrics": m, "intervals": summary.intervals.get(key, {})} for key, m in numbers.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _wire_zoo_architectures()
    if problems := _config_errors(args.protocol, args.config) if args.protocol in list_protocols() else []:
        print("error: --config: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        request = local_shard_request(
            args.detector, args.dataset, input_size=args.input_size, protocol=args.protocol, split=args.split,
            config={"batch_size": args.batch_size, **args.config}, declared_format=args.format, device=args.device,
            architecture=args.architecture)
    except (EvaluationError, OSError) as error:
        print(f"error: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    if differences := _unexpected(args, request):
        print("error: not the same evaluation: " + "; ".join(differences), file=sys.stderr)
        return 2
    requests = _shards(request, args)
    scored = _score(requests)
    if isinstance(scored, str):
        print(scored, file=sys.stderr)
        return 1
    report = _report(request, args, requests, *scored)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
