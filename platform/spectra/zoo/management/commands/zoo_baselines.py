"""Train the zoo's detectors and submit them as baseline rows: `python manage.py zoo_baselines`.

Every detector entry with a training recipe is trained on each dataset variant its card names (the spectral,
probe and triplet entries on the original version; ResNet-50 and Swin-T on the biased and on the unbiased one,
which is the experiment of the Unbiased GenImage paper, with each of the seeds ``DEBIASING_SEEDS``), exported to
the three upload formats (each export is checked to score a batch of images like the trained module), and its
safetensors weights are submitted through the same path as an upload (format checks, evaluation workers, platform
checks; on queue ``eval-zoo``, behind people's uploads), owned by the "zoo" account. Each row's progress is a
ZooPreparation record (waiting, training, submitted, failed with the reason), shown on the home and zoo pages.
A row that fails to train is recorded and the next one goes on. Idempotent: a row that is queued, running or
done on the current version is skipped unless --force.
"""
from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spectra.benchmarks.models import Benchmark
from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.benchmarks.store import dataset_local_root
from spectra.core.errors import ApplicationError
from spectra.submissions.models import Submission
from spectra.zoo.models import ZooPreparation, ZooStage
from spectra.zoo.services import (
    trainable_entries,
    zoo_baseline_pending,
    zoo_baseline_submit,
    zoo_preparation_plan,
    zoo_preparation_stage,
)

DEFAULT_INPUT_SIZE = 224  # for images of mixed sizes; a benchmark of one square size is used at that size


class Command(BaseCommand):
    help = "Train the zoo's detectors on a benchmark and submit them like uploads (baseline rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")
        parser.add_argument("--entry", action="append", choices=[c.name for c in trainable_entries()],
                            help="default: every entry with a training recipe")
        parser.add_argument("--force", action="store_true", help="train and submit again even if a live row exists")

    def handle(self, *args: Any, benchmark: str, entry: list[str] | None, force: bool, **options: Any) -> None:
        try:
            target = benchmark_get(slug=benchmark)
            ranked = dataset_current(benchmark=target)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        size, failed = input_side(dataset_local_root(ranked)), 0
        for record in zoo_preparation_plan(dataset=ranked, entries=entry):
            pending = zoo_baseline_pending(record=record)
            if pending is not None and not force:
                self.stdout.write(f"  {record}: row #{pending.pk} is {pending.status}; --force submits again")
                continue
            failed += self._prepare(record, target, size) is None
        if failed:
            raise CommandError(f"{failed} zoo row(s) of {benchmark} could not be prepared; the zoo page says why.")
        self.stdout.write(self.style.SUCCESS(f"Zoo baseline rows of {benchmark} are queued or up to date."))

    def _prepare(self, record: ZooPreparation, benchmark: Benchmark, size: int) -> Submission | None:
        """Train and submit one row, recording each stage; a failure is recorded in plain words, not raised."""
        zoo_preparation_stage(record=record, stage=ZooStage.TRAINING)
        try:
            submission = self._train_and_submit(record, benchmark, size)
        except ApplicationError as error:
            message = error.message
        except Exception as error:  # noqa: BLE001 - one broken recipe must not stop the other rows
            message = f"training failed ({type(error).__name__}: {error})"
        else:
            zoo_preparation_stage(record=record, stage=ZooStage.SUBMITTED, submission=submission)
            return submission
        self.stderr.write(f"  {record}: {message}")
        zoo_preparation_stage(record=record, stage=ZooStage.FAILED, error=message)
        return None

    def _train_and_submit(self, record: ZooPreparation, benchmark: Benchmark, size: int) -> Submission:
        """Train on the record's variant at the ranked version's input size (every row of a benchmark takes the
        same input), export, submit."""
        from models_zoo.export import export_all
        from models_zoo.registry import train_model

        name, variant = record.entry, record.trained_on
        root = dataset_local_root(dataset_current(benchmark=benchmark, variant=variant))  # ApplicationError if missing
        self.stdout.write(f"  {record}: training at {size} px …")
        model = train_model(name, root, input_size=size, seed=record.seed)
        with tempfile.TemporaryDirectory() as folder:
            exports = export_all(model, Path(folder), architecture=name, input_size=size)
            for fmt, reason in exports.items():
                if not isinstance(reason, Path):
                    self.stdout.write(f"  {name}: no {fmt} export ({reason})")
            submission = zoo_baseline_submit(
                entry=name, trained_on=variant, seed=record.seed, benchmark=benchmark, input_size=size,
                exports={fmt: path for fmt, path in exports.items() if isinstance(path, Path)})
        self.stdout.write(f"  {record}: submitted #{submission.pk} (weights {submission.artifact.sha256[:12]})")
        return submission


def input_side(root: Path) -> int:
    """The images' side when the version holds square images of one size (the spectral detectors need native
    pixels), else the default input size."""
    from evaluation.datasets.manifest import read_manifest

    sizes = {(row.width, row.height) for row in itertools.islice(read_manifest(root / "manifest.jsonl"), 1000)}
    width, height = next(iter(sizes))
    return width if len(sizes) == 1 and width == height else DEFAULT_INPUT_SIZE
