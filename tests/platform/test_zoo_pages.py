"""Zoo pages list every card without torch, show a card whole, and plot the spectral few-shot experiment."""
from __future__ import annotations

import io

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


def test_the_debiasing_effect_is_the_difference_of_the_two_rows_with_combined_intervals(client, db) -> None:
    import math

    from spectra.benchmarks.models import Benchmark, Dataset
    from spectra.submissions.models import Artifact, Result, Submission
    from spectra.zoo.services import zoo_owner

    benchmark = Benchmark.objects.create(slug="mini", name="Mini (synthetic)")
    versions = {v: Dataset.objects.create(benchmark=benchmark, variant=v, manifest_sha256=v * 8, root=f"/data/{v}")
                for v in ("biased", "unbiased")}
    owner, means = zoo_owner(), {}
    for trained_on, accuracy in (("biased", {"biased": 0.95, "unbiased": 0.60}),
                                 ("unbiased", {"biased": 0.90, "unbiased": 0.75})):
        artifact = Artifact.objects.create(owner=owner, format="safetensors", sha256=trained_on * 8, size=1,
                                           architecture="resnet50", file=f"artifacts/{trained_on}.safetensors")
        row = Submission.objects.create(name=trained_on, owner=owner, artifact=artifact, benchmark=benchmark,
                                        dataset=versions["biased"], zoo_entry="resnet50", zoo_trained_on=trained_on,
                                        status="done")
        for variant, value in accuracy.items():
            half = 0.03 if trained_on == "biased" else 0.04
            Result.objects.create(submission=row, dataset=versions[variant], protocol="cross-generator",
                                  protocol_version=4, subset="mean", metrics={"acc_mean": value},
                                  intervals={"acc_mean": [value - half, value + half]}, evaluator_version="t",
                                  manifest_sha256="m", artifact_sha256=artifact.sha256)
            means[(trained_on, variant)] = value
    page = client.get(reverse("zoo-detail", args=["resnet50"])).content.decode()
    assert "biased 0.950 · unbiased 0.600" in page and "biased 0.900 · unbiased 0.750" in page  # the rows' means
    table = page[page.index('id="debiasing-effect"'):]
    # tested on unbiased: 0.75 − 0.60 = +0.150, half-width hypot(0.03, 0.04) = 0.05
    assert "<td>unbiased</td>" in table and "0.150" in table and "[0.100, 0.200]" in table
    assert "<td>biased</td>" in table and "-0.050" in table and "[-0.100, 0.000]" in table
    assert math.isclose(math.hypot(0.03, 0.04), 0.05)
