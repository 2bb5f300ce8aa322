"""Zoo pages list every card without torch, show a card whole, and plot the spectral few-shot experiment."""
from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from models_zoo.registry import list_cards
from spectra.zoo.models import ZooExperiment


def test_the_zoo_lists_every_card_and_an_unknown_entry_is_a_404_naming_close_ones(client, db) -> None:
    page = client.get(reverse("zoo")).content.decode()
    for card in list_cards():
        assert f'<tr data-entry="{card.name}">' in page
    missing = client.get("/zoo/spectral-lrr/")
    assert missing.status_code == 404 and "spectral-lr" in missing.content.decode()


def test_the_few_shot_experiment_is_stored_and_plotted_on_the_card(client, mini_dataset) -> None:
    out = io.StringIO()
    call_command("zoo_experiments", "--repeats", "2", stdout=out)
    experiment = ZooExperiment.objects.get(entry="spectral", name="few-shot", dataset=mini_dataset)
    data = experiment.data
    assert data["sizes"] == [2, 4, 10, 20, 50, 100, 200] and set(data["methods"]) == {"lr", "svm", "kmeans"}
    assert all(0 <= v <= 1 for curve in data["methods"].values() for v in curve["mean"])
    assert data["methods"]["lr"]["mean"][-1] > 0.7  # 200 labelled profiles separate real from generated well
    again = io.StringIO()
    call_command("zoo_experiments", stdout=again)
    assert "up to date" in again.getvalue()
    page = client.get(reverse("zoo-detail", args=["spectral-lr"])).content.decode()
    assert f'id="experiment-{experiment.pk}"' in page and "Few labelled samples" in page
    assert "100 %" in page and "[fig]" in page and "durall2019unmasking" in page
    assert '<script src="/static/plotly/plotly.min.js"></script>' in page


def test_the_triplet_label_noise_experiment_is_stored_and_tabled(client, mini_dataset) -> None:
    call_command("zoo_experiments", "--triplet-steps", "3", "--per-class", "6", "--repeats", "1", stdout=io.StringIO())
    experiment = ZooExperiment.objects.get(entry="triplet", name="label-noise", dataset=mini_dataset)
    rows = experiment.data["rows"]
    assert {(r["loss"], r["noise"]) for r in rows} == {
        (loss, rate) for loss in ("standard", "improved", "absolute") for rate in (0.0, 0.2, 0.4)}
    assert experiment.data["classes"] == 6  # real and five generators
    for row in rows:
        for method in ("kmeans", "correlation"):
            assert 0 <= row[method]["nmi"] <= 1 and -1 <= row[method]["ari"] <= 1 and 0 < row[method]["accuracy"] <= 1
    page = client.get(reverse("zoo-detail", args=["triplet-absolute"])).content.decode()
    assert 'id="label-noise"' in page and page.count("<td>absolute</td>") == 3


def _zoo_rows(benchmark, versions, entry: str, accuracy: dict, halves: dict) -> None:
    """Stored results of zoo rows: accuracy[(seed, trained_on)][test version], 95 % half-widths alike."""
    from spectra.submissions.models import Artifact, Result, Submission
    from spectra.zoo.models import ZooPreparation
    from spectra.zoo.services import zoo_owner

    for (seed, trained_on), by_variant in accuracy.items():
        sha = f"{trained_on}{seed}".ljust(64, "0")
        artifact = Artifact.objects.create(owner=zoo_owner(), format="safetensors", sha256=sha, size=1,
                                           architecture=entry, file=f"artifacts/{sha}.safetensors")
        row = Submission.objects.create(name=sha, owner=zoo_owner(), artifact=artifact, benchmark=benchmark,
                                        dataset=versions["original"], zoo_entry=entry, zoo_trained_on=trained_on,
                                        status="done")
        ZooPreparation.objects.create(dataset=versions["original"], entry=entry, trained_on=trained_on, seed=seed,
                                      stage="submitted", submission=row)
        for variant, value in by_variant.items():
            half = halves[(seed, trained_on)][variant]
            Result.objects.create(submission=row, dataset=versions[variant], protocol="cross-generator",
                                  protocol_version=4, subset="mean", metrics={"acc_mean": value},
                                  intervals={"acc_mean": [value - half, value + half]}, evaluator_version="t",
                                  manifest_sha256="m", artifact_sha256=sha)


def _effect_rows(page: str) -> dict[str, list[str]]:
    """The debiasing table's cells by test version, as the page shows them."""
    import re

    table = page[page.index('id="debiasing-effect"'):]
    table = table[:table.index("</table>")]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in table.split("<tr>")[2:]]
    return {cells[1]: cells for cells in rows}


def test_the_debiasing_effect_is_the_mean_over_seeds_with_their_spread_and_a_combined_interval(client, db) -> None:
    from spectra.benchmarks.models import Benchmark, Dataset

    benchmark = Benchmark.objects.create(slug="mini", name="Mini (synthetic)")
    versions = {v: Dataset.objects.create(benchmark=benchmark, variant=v, manifest_sha256=v * 8, root=f"/data/{v}")
                for v in ("original", "biased", "unbiased")}
    rng = np.random.default_rng(4)
    keys = [(seed, t) for seed in (0, 1, 2) for t in ("biased", "unbiased")] + [(3, "biased")]  # seed 3: no pair
    accuracy = {k: {v: float(rng.uniform(0.5, 0.95)) for v in ("biased", "unbiased")} for k in keys}
    halves = {k: {v: float(rng.uniform(0.01, 0.05)) for v in ("biased", "unbiased")} for k in keys}
    _zoo_rows(benchmark, versions, "resnet50", accuracy, halves)
    page = client.get(reverse("zoo-detail", args=["resnet50"])).content.decode()
    shown = _effect_rows(page)
    assert set(shown) == {"biased", "unbiased"}
    for variant, cells in shown.items():
        # Independently: numpy over the three complete seeds; the mean's interval from each row's half-width.
        b = np.array([accuracy[(s, "biased")][variant] for s in (0, 1, 2)])
        u = np.array([accuracy[(s, "unbiased")][variant] for s in (0, 1, 2)])
        squares = [halves[(s, t)][variant] ** 2 for s in (0, 1, 2) for t in ("biased", "unbiased")]
        half = np.sqrt(np.sum(squares)) / 3
        difference, spread = np.mean(u - b), np.std(u - b, ddof=1)
        assert cells[2] == "3"
        assert cells[3:5] == [f"{b.mean():.3f}", f"{u.mean():.3f}"]
        assert cells[5] == f"{difference:.3f} ± {spread:.3f}"
        assert cells[6] == f"[{difference - half:.3f}, {difference + half:.3f}]"
        assert cells[7] == " · ".join(f"seed {s}: {u[s] - b[s]:.3f}" for s in (0, 1, 2))
    first = accuracy[(0, "biased")]
    assert f"biased {first['biased']:.3f} · unbiased {first['unbiased']:.3f}" in page  # each row's own means
    assert page.count("<td>unbiased, seed 2</td>") == 1 and page.count("<td>biased, seed 3</td>") == 1


def test_one_seed_shows_no_spread(client, db) -> None:
    from spectra.benchmarks.models import Benchmark, Dataset

    benchmark = Benchmark.objects.create(slug="mini", name="Mini (synthetic)")
    versions = {v: Dataset.objects.create(benchmark=benchmark, variant=v, manifest_sha256=v * 8, root=f"/data/{v}")
                for v in ("original", "biased", "unbiased")}
    accuracy = {(0, "biased"): {"unbiased": 0.60}, (0, "unbiased"): {"unbiased": 0.75}}
    _zoo_rows(benchmark, versions, "swin-t", accuracy, {k: {"unbiased": 0.02} for k in accuracy})
    cells = _effect_rows(client.get(reverse("zoo-detail", args=["swin-t"])).content.decode())["unbiased"]
    assert cells[2] == "1" and cells[5] == "0.150" and "±" not in cells[5]


def test_the_plan_holds_three_seeds_per_version_for_the_debiasing_pairs_and_one_row_otherwise(mini_dataset) -> None:
    from models_zoo.cards import DEBIASING_SEEDS
    from spectra.zoo.services import trainable_entries, zoo_preparation_plan

    planned = zoo_preparation_plan(dataset=mini_dataset)
    keys = [(r.entry, r.trained_on, r.seed) for r in planned]
    expected = [(card.name, variant, seed) for card in trainable_entries() for variant in card.trained_on
                for seed in (DEBIASING_SEEDS if card.name in ("resnet50", "swin-t") else (0,))]
    assert keys == expected and len(DEBIASING_SEEDS) >= 3
    assert {r.stage for r in planned} == {"waiting"}
    assert [r.pk for r in zoo_preparation_plan(dataset=mini_dataset)] == [r.pk for r in planned]  # idempotent


def test_a_row_that_cannot_be_trained_is_recorded_in_plain_words_and_the_rest_go_on(mini_dataset) -> None:
    from django.core.management.base import CommandError

    from spectra.zoo.models import ZooPreparation

    # The mini benchmark here has only its original version: ResNet-50's rows need the biased and unbiased ones.
    with pytest.raises(CommandError, match="6 zoo row"):
        call_command("zoo_baselines", "--entry", "resnet50", stdout=io.StringIO(), stderr=io.StringIO())
    records = ZooPreparation.objects.filter(entry="resnet50")
    assert records.count() == 6 and {r.stage for r in records} == {"failed"}
    assert "has no biased dataset yet" in records.get(trained_on="biased", seed=1).error


def test_the_preparation_progress_is_on_the_home_and_zoo_pages(client, mini_dataset) -> None:
    from spectra.submissions.models import Artifact, Submission
    from spectra.zoo.models import ZooPreparation
    from spectra.zoo.services import zoo_owner

    def row(status: str, error: str = "") -> Submission:
        artifact = Artifact.objects.create(owner=zoo_owner(), format="safetensors", sha256=status.ljust(64, "0"),
                                           size=1, architecture="resnet50", file=f"artifacts/{status}.safetensors")
        return Submission.objects.create(name=status, owner=zoo_owner(), artifact=artifact, error=error,
                                         benchmark=mini_dataset.benchmark, dataset=mini_dataset, status=status)

    states = [("submitted", row("done"), ""), ("submitted", row("queued"), ""), ("training", None, ""),
              ("waiting", None, ""), ("failed", None, "training failed (RuntimeError: out of memory)"),
              ("submitted", row("failed", "the detector returned NaN for 3 images"), "")]
    for seed, (stage, submission, error) in enumerate(states):
        ZooPreparation.objects.create(dataset=mini_dataset, entry="resnet50", trained_on="biased", seed=seed,
                                      stage=stage, submission=submission, error=error)
    for url in (reverse("home"), reverse("zoo"), reverse("zoo-detail", args=["resnet50"])):
        page = client.get(url).content.decode()
        assert "Preparing the zoo: 1 of 6" in page, url
        assert "resnet50 trained on biased, seed 1 (evaluating); resnet50 trained on biased, seed 2 (training)" in page
        assert "resnet50 trained on biased, seed 4 failed: training failed (RuntimeError: out of memory)" in page
        assert "seed 5 failed: its evaluation failed: the detector returned NaN for 3 images" in page
    ZooPreparation.objects.exclude(seed=0).delete()
    assert "The zoo's baseline rows are ready: 1 of 1 evaluated." in client.get(reverse("home")).content.decode()


def test_the_indicator_study_and_the_trajectory_landscape_are_stored_and_plotted(client, db, mini_root, tmp_path) -> None:
    from evaluation.indicators import INDICATORS
    from models_zoo.indicator_study import ROBUSTNESS
    from spectra.benchmarks.services import benchmark_upsert, dataset_register
    from tests.reference import small_version

    benchmark = benchmark_upsert(slug="tiny", name="Tiny", description="test", is_synthetic=True)
    dataset = dataset_register(benchmark=benchmark, root=small_version(mini_root, tmp_path / "tiny", per_class=20))
    call_command("zoo_experiments", "--benchmark", "tiny", "--indicator-steps", "2", "--trajectory-steps", "24",
                 "--repeats", "1", stdout=io.StringIO())
    experiment = ZooExperiment.objects.get(entry="indicators", name="population", dataset=dataset)
    assert len(experiment.data["models"]) == 4 * 2  # one version: 4 augmentations × 2 seeds
    page = client.get(reverse("zoo-detail", args=["indicators"])).content.decode()
    pairs = len(INDICATORS) * len(ROBUSTNESS)  # every indicator against JPEG and wild robustness and their drops
    assert 'id="indicator-correlations"' in page and page.count('<tr data-pair="') == pairs == 20
    assert f'id="indicator-{experiment.pk}-silhouette"' in page and "no number retrievable" in page
    trajectory = ZooExperiment.objects.get(entry="landscape", name="trajectory", dataset=dataset)
    assert len(trajectory.data["path"]) == 12 and len(trajectory.data["loss"]) == 21 * 21  # a checkpoint every 2 steps
    page = client.get(reverse("zoo-detail", args=["landscape"])).content.decode()
    assert f'id="trajectory-{trajectory.pk}-surface"' in page and "GradVis" in page
    table = client.get(f"/zoo/landscape/figures/trajectory-{trajectory.pk}-contour.csv")
    assert table.status_code == 200 and table.content.decode().count("training trajectory") == 12
    surface = client.get(f"/zoo/landscape/figures/trajectory-{trajectory.pk}-surface.json").json()
    assert surface["data"][1]["z"] == trajectory.data["path_loss"]
    assert client.get("/zoo/landscape/figures/nothing.json").status_code == 404
    assert client.get(f"/zoo/indicators/figures/indicator-{experiment.pk}-nmi.csv").status_code == 200


def test_a_zoo_row_shows_its_loss_in_the_wild_with_the_drops_interval(client, db) -> None:
    from evaluation.protocols import wild
    from spectra.benchmarks.models import Benchmark, Dataset
    from spectra.submissions.models import Result, Submission

    benchmark = Benchmark.objects.create(slug="mini", name="Mini (synthetic)")
    versions = {"original": Dataset.objects.create(benchmark=benchmark, variant="original", manifest_sha256="o" * 8,
                                                   root="/data/original")}
    _zoo_rows(benchmark, versions, "resnet50", {(0, "original"): {"original": 0.65}}, {(0, "original"): {"original": 0.03}})
    row = Submission.objects.get(zoo_entry="resnet50")
    for condition, metrics, intervals in (("", {"roc_auc": 0.738}, {}), (wild.CHAINS, {"roc_auc": 0.645}, {}),
                                          (wild.DROP, {wild.ROC_AUC_DROP: 0.093}, {wild.ROC_AUC_DROP: [0.054, 0.131]})):
        Result.objects.create(submission=row, dataset=versions["original"], protocol=wild.NAME,
                              protocol_version=wild.PROTOCOL.version, condition=condition, subset="mean",
                              metrics=metrics, intervals=intervals, evaluator_version="t", manifest_sha256="m",
                              artifact_sha256=row.artifact.sha256)
    page = client.get(reverse("zoo-detail", args=["resnet50"])).content.decode()
    assert 'data-drop="0.093"' in page and "0.738 → 0.645" in page and "(0.093 [0.054, 0.131])" in page
