"""Train the zoo's detectors on a benchmark and submit them as baseline rows: `python manage.py zoo_baselines`.

Each entry is fitted on the original version's train split, exported to TorchScript and submitted through the
same path as an upload (format checks, queue, evaluation workers, platform checks), owned by the "zoo" account.
Idempotent: an entry that already has a live row on the current version is skipped unless --force.
"""
from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.core.errors import ApplicationError
from spectra.zoo.services import zoo_baseline_pending, zoo_baseline_submit

ENTRIES = {"spectral-lr": "lr", "spectral-svm": "svm", "spectral-kmeans": "kmeans"}


class Command(BaseCommand):
    help = "Fit the zoo's detectors on a benchmark's train split and submit them like uploads (baseline rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")
        parser.add_argument("--entry", action="append", choices=sorted(ENTRIES), help="default: every entry")
        parser.add_argument("--force", action="store_true", help="submit again even if a live row exists")

    def handle(self, *args: Any, benchmark: str, entry: list[str] | None, force: bool, **options: Any) -> None:
        try:
            target = benchmark_get(slug=benchmark)
            dataset = dataset_current(benchmark=target)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        for name in entry or sorted(ENTRIES):
            pending = zoo_baseline_pending(entry=name, dataset=dataset)
            if pending is not None and not force:
                self.stdout.write(f"  {name}: row #{pending.pk} is {pending.status}; --force submits again")
                continue
            submission = self._submit(name, target, Path(dataset.root))
            self.stdout.write(f"  {name}: submitted #{submission.pk} (artifact {submission.artifact.sha256[:12]})")
        self.stdout.write(self.style.SUCCESS(f"Zoo baseline rows of {benchmark} are queued or up to date."))

    def _submit(self, name: str, benchmark: Any, root: Path) -> Any:
        import torch

        from models_zoo.spectral import train_on_dataset

        size = _image_side(root)
        model = train_on_dataset(root, ENTRIES[name], size=size)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{name}.pt"
            torch.jit.save(torch.jit.script(model), str(path))
            try:
                return zoo_baseline_submit(entry=name, benchmark=benchmark, artifact=path, input_size=size)
            except ApplicationError as error:
                raise CommandError(error.message) from None


def _image_side(root: Path) -> int:
    """The images' side: the spectral detectors take images at their native size (no resampling)."""
    from evaluation.datasets.manifest import read_manifest

    sizes = {(row.width, row.height) for row in itertools.islice(read_manifest(root / "manifest.jsonl"), 1000)}
    if len(sizes) != 1 or len({*next(iter(sizes))}) != 1:
        raise CommandError(f"the spectral detectors need square images of one size; {root} has {sorted(sizes)[:5]}")
    return next(iter(sizes))[0]
