"""Build the synthetic mini benchmark and register it: `python manage.py build_mini_benchmark`.

Three versions, each registered as a variant of the benchmark "mini": ``original`` (64 px PNG tiles, the
spine's default), ``biased`` (GenImage's shortcuts reproduced on purpose) and ``unbiased`` (the biased one
after the Unbiased GenImage builder). Each lives in a folder named by its manifest's sha256.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from spectra.benchmarks.management.publish import dataset_publish
from spectra.benchmarks.models import Dataset
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.benchmarks.store import dataset_has_manifest

SLUG = "mini"
VARIANTS = ("original", "biased", "unbiased")


def _settle(staging: Path, final: Path) -> Path:
    """Move a finished build to its content-named folder (or drop it when that version already exists)."""
    if final.exists():
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return final


class Command(BaseCommand):
    help = "Build the synthetic mini benchmark (original, biased and unbiased versions) and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Rebuild even if current versions exist.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--smoke", action="store_true",
                            help="Train the generator networks for a few steps only: a quick build for tests and "
                                 "demos, not the published benchmark.")

    def handle(self, *args: Any, force: bool, seed: int, smoke: bool, **options: Any) -> None:
        current = {d.variant: d for d in Dataset.objects.filter(benchmark__slug=SLUG, is_current=True)}
        if all(v in current and dataset_has_manifest(current[v]) for v in VARIANTS) and not force:
            self.stdout.write("The mini benchmark is up to date (" + ", ".join(
                f"{v} {current[v].manifest_sha256[:12]}" for v in VARIANTS) + "); --force rebuilds it.")
            for variant in VARIANTS:
                dataset_publish(current[variant], self.stdout.write)
            return
        steps = {"vae_steps": 5, "gan_steps": 5} if smoke else {}
        roots, seconds = self._build(Path(settings.SPECTRA_DATA_ROOT) / SLUG, seed, steps,
                                     lambda line: self.stdout.write(f"  {line}"))
        self._register(roots)
        self.stdout.write(self.style.SUCCESS(f"Built the mini benchmark in {seconds:.0f} s."))

    def _build(self, base: Path, seed: int, steps: dict[str, int],
               say: Callable[[str], None]) -> tuple[dict[str, Path], float]:
        # torch is imported here, not at module level: the web process loads every command's module.
        from evaluation.datasets.mini import build_mini_benchmark
        from evaluation.datasets.mini.variants import build_mini_variants

        staging = {v: base / f"_building-{v}" for v in VARIANTS}
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        summary = build_mini_benchmark(staging["original"], seed=seed, progress=say, **steps)
        original = _settle(staging["original"], base / summary.manifest_sha256[:16])
        biased, unbiased = build_mini_variants(original, staging["biased"], staging["unbiased"], seed=seed,
                                               progress=say)
        # The unbiased version hard-links the biased one's real files, so renaming the folders keeps it whole.
        roots = {
            "original": original,
            "biased": _settle(staging["biased"], base / f"biased-{biased.manifest_sha256[:16]}"),
            "unbiased": _settle(staging["unbiased"], base / f"unbiased-{unbiased.manifest_sha256[:16]}"),
        }
        return roots, summary.seconds + biased.seconds + unbiased.seconds

    def _register(self, roots: dict[str, Path]) -> None:
        from evaluation.datasets.mini import MINI_DESCRIPTION, MINI_LICENCE
        from evaluation.datasets.mini.variants import MINI_BIASED_DESCRIPTION, MINI_UNBIASED_DESCRIPTION

        benchmark = benchmark_upsert(slug=SLUG, name="Mini (synthetic)", description=MINI_DESCRIPTION,
                                     is_synthetic=True)
        descriptions = {"original": MINI_DESCRIPTION, "biased": MINI_BIASED_DESCRIPTION,
                        "unbiased": MINI_UNBIASED_DESCRIPTION}
        for variant, root in roots.items():
            dataset = dataset_register(benchmark=benchmark, root=root, variant=variant, licence=MINI_LICENCE,
                                       description=descriptions[variant])
            dataset_publish(dataset, self.stdout.write)
            self._summarise(dataset)

    def _summarise(self, dataset: Dataset) -> None:
        audit = dataset.audit.get("verdict", "not audited")
        self.stdout.write(f"{dataset.variant}: {dataset.root}\n  manifest sha256 {dataset.manifest_sha256}; "
                          f"bias audit: {audit}")
        for subset in dataset.subsets.all():
            label = subset.generator or "real (shared)"
            self.stdout.write(f"  {subset.split:<5} {label:<16} real {subset.n_real:>4}  generated {subset.n_generated:>4}")
