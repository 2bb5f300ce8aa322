"""Train the zoo's detectors and submit them as baseline rows: `python manage.py zoo_baselines`.

Every detector entry with a training recipe is trained on each dataset variant its card names (the spectral,
probe and triplet entries on the original version; ResNet-50 and Swin-T on the biased and on the unbiased one,
which is the experiment of the Unbiased GenImage paper), exported to the three upload formats (each export is
checked to score a batch of images like the trained module), and its safetensors weights are submitted through
the same path as an upload (format checks, queue, evaluation workers, platform checks), owned by the "zoo"
account. Idempotent: a row that is queued, running or done on the current version is skipped unless --force.
"""
from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_zoo.registry import Card, list_cards
from spectra.benchmarks.models import Benchmark
from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.core.errors import ApplicationError
from spectra.submissions.models import Submission
from spectra.zoo.services import zoo_baseline_pending, zoo_baseline_submit

DEFAULT_INPUT_SIZE = 224  # for images of mixed sizes; a benchmark of one square size is used at that size


def trainable_entries() -> list[Card]:
    return [card for card in list_cards("detector") if card.trainer]


class Command(BaseCommand):
    help = "Train the zoo's detectors on a benchmark and submit them like uploads (baseline rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")
        parser.add_argument("--entry", action="append", choices=[c.name for c in trainable_entries()],
                            help="default: every entry with a training recipe")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="train and submit again even if a live row exists")

    def handle(self, *args: Any, benchmark: str, entry: list[str] | None, seed: int, force: bool, **options: Any) -> None:
        try:
            target = benchmark_get(slug=benchmark)
            ranked = dataset_current(benchmark=target)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        for card in (c for c in trainable_entries() if not entry or c.name in entry):
            for variant in card.trained_on:
                pending = zoo_baseline_pending(entry=card.name, trained_on=variant, dataset=ranked)
                if pending is not None and not force:
                    self.stdout.write(f"  {card.name} ({variant}): row #{pending.pk} is {pending.status}; --force submits again")
                    continue
                self._train_and_submit(card.name, variant, target, seed, input_side(Path(ranked.root)))
        self.stdout.write(self.style.SUCCESS(f"Zoo baseline rows of {benchmark} are queued or up to date."))

    def _train_and_submit(self, name: str, variant: str, benchmark: Benchmark, seed: int, size: int) -> Submission | None:
        """Train on the ``variant`` version at the ranked version's input size (every row of a benchmark takes
        the same input), export, submit."""
        from models_zoo.export import export_all
        from models_zoo.registry import train_model

        try:
            root = Path(dataset_current(benchmark=benchmark, variant=variant).root)
        except ApplicationError:
            self.stdout.write(f"  {name} ({variant}): {benchmark.slug} has no {variant} version; skipped")
            return None
        self.stdout.write(f"  {name} ({variant}): training at {size} px …")
        model = train_model(name, root, input_size=size, seed=seed)
        with tempfile.TemporaryDirectory() as folder:
            exports = export_all(model, Path(folder), architecture=name, input_size=size)
            for fmt, reason in exports.items():
                if not isinstance(reason, Path):
                    self.stdout.write(f"  {name}: no {fmt} export ({reason})")
            try:
                submission = zoo_baseline_submit(
                    entry=name, trained_on=variant, benchmark=benchmark, input_size=size,
                    exports={fmt: path for fmt, path in exports.items() if isinstance(path, Path)})
            except ApplicationError as error:
                raise CommandError(error.message) from None
        self.stdout.write(f"  {name} ({variant}): submitted #{submission.pk} (weights {submission.artifact.sha256[:12]})")
        return submission


def input_side(root: Path) -> int:
    """The images' side when the version holds square images of one size (the spectral detectors need native
    pixels), else the default input size."""
    from evaluation.datasets.manifest import read_manifest

    sizes = {(row.width, row.height) for row in itertools.islice(read_manifest(root / "manifest.jsonl"), 1000)}
    width, height = next(iter(sizes))
    return width if len(sizes) == 1 and width == height else DEFAULT_INPUT_SIZE
