"""Run the zoo's experiments on a benchmark and store them: `python manage.py zoo_experiments [--benchmark mini]`.

The robustness-indicator population study (models_zoo.indicator_study; --indicator-steps), the triplet
label-noise experiment (--triplet-steps), and the spectral detector's few-labelled-samples curve (seeds.md §8.4: accuracy against training-set size),
real images against every generated family of the version's train split, scored on its test split. Idempotent:
a version that already has the result is skipped unless --force.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.selectors import benchmark_get, dataset_current, dataset_versions_evaluated
from spectra.benchmarks.store import dataset_local_root
from spectra.core.errors import ApplicationError
from spectra.zoo.models import ZooExperiment
from spectra.zoo.services import zoo_experiment_store


class Command(BaseCommand):
    help = "Run the zoo's experiments (the spectral few-shot curve) on a benchmark version and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")
        parser.add_argument("--variant", default="original")
        parser.add_argument("--repeats", type=int, default=10)
        parser.add_argument("--force", action="store_true")
        parser.add_argument("--triplet-steps", type=int, default=0,
                            help="also train the triplet embeddings this many steps per (loss, noise rate) and "
                                 "cluster them (a few minutes on a CPU at 150; 0 skips them)")
        parser.add_argument("--per-class", type=int, default=30, help="images per class for the triplet experiment")
        parser.add_argument("--trajectory-steps", type=int, default=0,
                            help="training steps of the landscape-along-a-trajectory experiment (zoo_prepare runs "
                                 "300; 0, the default, skips it)")
        parser.add_argument("--indicator-steps", type=int, default=0,
                            help="training steps of each of the robustness-indicator study's small CNNs (24 on the "
                                 "mini benchmark; zoo_prepare runs 300; 0, the default, skips the study)")

    def handle(self, *args: Any, benchmark: str, variant: str, repeats: int, force: bool, triplet_steps: int,
               per_class: int, indicator_steps: int, trajectory_steps: int, **options: Any) -> None:
        try:
            dataset = dataset_current(benchmark=benchmark_get(slug=benchmark), variant=variant)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if triplet_steps:
            self._triplet(dataset, triplet_steps, per_class, force)
        if indicator_steps:
            self._indicators(dataset, indicator_steps, force)
        if trajectory_steps:
            self._trajectory(dataset, trajectory_steps, force)
        if not force and ZooExperiment.objects.filter(entry="spectral", name="few-shot", dataset=dataset).exists():
            self.stdout.write(f"The spectral few-shot curve of {dataset} is up to date; --force recomputes it.")
            return
        self.stdout.write(f"spectral profiles of {dataset} …")
        data = _few_shot(dataset_local_root(dataset), repeats)
        zoo_experiment_store(entry="spectral", name="few-shot", dataset=dataset, data=data,
                             evaluator_version=EVALUATOR_VERSION)
        for method, curve in data["methods"].items():
            points = ", ".join(f"{n}: {m:.2f}" for n, m in zip(data["sizes"], curve["mean"], strict=True))
            self.stdout.write(f"  {method:<7} {points}")
        self.stdout.write(self.style.SUCCESS(f"Stored the spectral few-shot curve of {dataset}."))


    def _triplet(self, dataset: Any, steps: int, per_class: int, force: bool) -> None:
        if not force and ZooExperiment.objects.filter(entry="triplet", name="label-noise", dataset=dataset).exists():
            self.stdout.write(f"The triplet label-noise experiment of {dataset} is up to date; --force recomputes it.")
            return
        self.stdout.write(f"triplet embeddings on {dataset}: 3 losses × 3 noise rates, {steps} steps each …")
        data = _triplet_noise(dataset_local_root(dataset), steps, per_class)
        zoo_experiment_store(entry="triplet", name="label-noise", dataset=dataset, data=data,
                             evaluator_version=EVALUATOR_VERSION)
        for row in data["rows"]:
            self.stdout.write(f"  {row['loss']:<9} noise {row['noise']:.0%}: k-means NMI {row['kmeans']['nmi']:.2f}, "
                              f"correlation NMI {row['correlation']['nmi']:.2f} ({row['correlation']['clusters']} clusters)")


    def _indicators(self, dataset: Any, steps: int, force: bool) -> None:
        from models_zoo.indicator_study import run_study

        if not force and ZooExperiment.objects.filter(entry="indicators", name="population", dataset=dataset).exists():
            self.stdout.write(f"The robustness-indicator study on {dataset} is up to date; --force recomputes it.")
            return
        versions = dataset_versions_evaluated(benchmark=dataset.benchmark)
        roots = {version.variant: dataset_local_root(version) for version in versions}
        self.stdout.write(f"robustness indicators: small CNNs on {', '.join(roots)}, {steps} steps each …")
        data = run_study(roots, dataset.variant, steps=steps, log=self.stdout.write)
        zoo_experiment_store(entry="indicators", name="population", dataset=dataset, data=data,
                             evaluator_version=EVALUATOR_VERSION)
        for pair, found in data["correlations"].items():
            interval = found["interval"] or [float("nan")] * 2
            rho = float("nan") if found["rho"] is None else found["rho"]
            self.stdout.write(f"  {pair}: ρ {rho:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}], {found['models']} models")


    def _trajectory(self, dataset: Any, steps: int, force: bool) -> None:
        from models_zoo.trajectory import trajectory_landscape

        if not force and ZooExperiment.objects.filter(entry="landscape", name="trajectory", dataset=dataset).exists():
            self.stdout.write(f"The landscape along a training trajectory on {dataset} is up to date; --force redoes it.")
            return
        self.stdout.write(f"landscape along a training trajectory on {dataset}, {steps} steps …")
        data = trajectory_landscape(dataset_local_root(dataset), steps=steps, every=max(steps // 12, 1))
        zoo_experiment_store(entry="landscape", name="trajectory", dataset=dataset, data=data,
                             evaluator_version=EVALUATOR_VERSION)
        self.stdout.write(f"  PCA explains {sum(data['explained_variance']):.0%} of the trajectory; loss "
                          f"{data['path_loss'][0]:.3f} → {data['path_loss'][-1]:.3f} along it")


def _class_images(root: Path, split: str, per_class: int) -> tuple[Any, Any]:
    """Up to ``per_class`` images of each class (real, then every generator), at their native size."""
    import numpy as np
    import torch

    from evaluation.datasets.images import decode_image
    from evaluation.datasets.manifest import read_manifest

    picked: dict[str, list] = {}
    for row in read_manifest(root / "manifest.jsonl"):
        group = picked.setdefault(row.generator or "real", [])
        if row.split == split and len(group) < per_class:
            group.append(row)
    images, labels = [], []
    for label, name in enumerate(sorted(picked, key=lambda g: (g != "real", g))):
        for row in picked[name]:
            with (root / row.path).open("rb") as handle:
                images.append(decode_image(handle, row.width, row.path))
            labels.append(label)
    return torch.stack(images), np.asarray(labels)


def _triplet_noise(root: Path, steps: int, per_class: int) -> dict:
    from models_zoo.triplet import noise_experiment

    train_images, train_labels = _class_images(root, "train", per_class)
    test_images, test_labels = _class_images(root, "test", per_class)
    return noise_experiment(train_images, train_labels, test_images, test_labels, steps=steps)


def _few_shot(root: Path, repeats: int) -> dict:
    from models_zoo.spectral import few_shot_curve, profiles_of_split

    train, train_labels = profiles_of_split(root, "train")
    test, test_labels = profiles_of_split(root, "test")
    return few_shot_curve(train, train_labels, test, test_labels, repeats=repeats)
