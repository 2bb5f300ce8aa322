"""Shortcut baselines on the leaderboards: computed from the manifest, shown unranked, near entries flagged."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.leaderboards.models import BaselineResult
from spectra.leaderboards.services import baselines_build
from tests.platform.test_api import finish, make_submission
from tests.reference import expected_metrics, scores_with_accuracy, split_rows


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    from tests import detector_files

    folder = tmp_path_factory.mktemp("baselines")
    return [detector_files.write_onnx(folder / f"{s}.onnx", seed=s, input_size=32).read_bytes() for s in range(2)]


def test_on_the_biased_version_the_shortcuts_score_high_and_on_the_unbiased_one_near_chance(db, mini_variant_roots):
    means = {}
    for variant, root in mini_variant_roots.items():
        benchmark = benchmark_upsert(slug=f"mini-{variant}", name=variant, description="test", is_synthetic=True)
        dataset = dataset_register(benchmark=benchmark, root=root)
        baselines_build(dataset=dataset)
        for result in BaselineResult.objects.filter(dataset=dataset, subset="mean"):
            means[(variant, result.baseline)] = (result.metrics["acc_mean"], result.intervals["acc_mean"])
            assert result.manifest_sha256 == dataset.manifest_sha256
    assert means[("biased", "jpeg-quality-only")][0] > 0.95
    # mini-biased v2 crops every image to 64 px at load time (so JPEG traces reach the detector unresampled):
    # after the crop the size tells nothing, and the size baseline, which sees sizes as a detector does, is at chance.
    assert abs(means[("biased", "size-only")][0] - 0.5) < 0.05
    for baseline in ("jpeg-quality-only", "size-only"):
        value, (low, high) = means[("unbiased", baseline)]
        assert low <= 0.5 + 0.05 and abs(value - 0.5) < 0.1, (baseline, value)


def test_the_leaderboard_shows_the_baselines_unranked_and_flags_an_entry_that_barely_beats_them(
    client, alice, mini_dataset, mini_root, onnx_files, test_line_numbers, send,
):
    baselines_build(dataset=mini_dataset)  # the plain mini version: PNG 64 px everywhere, so chance
    rows = split_rows(mini_root)
    strong, weak = (make_submission(alice, mini_dataset, data, name) for data, name in zip(onnx_files, ("strong", "weak"), strict=True))
    finish(strong, test_line_numbers, scores_with_accuracy(rows, 0.9))
    finish(weak, test_line_numbers, scores_with_accuracy(rows, 0.51))

    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    by_name = {r["name"]: r for r in board["rows"]}
    baselines = [r for r in board["rows"] if r["is_baseline"]]
    assert sorted(r["baseline"] for r in baselines) == ["jpeg-quality-only", "size-only"]
    assert all(r["rank"] == 0 and r["submission_id"] is None for r in baselines)
    assert [r["rank"] for r in board["rows"] if not r["is_baseline"]] == [1, 2]
    assert (by_name["strong"]["barely_beats_baseline"], by_name["weak"]["barely_beats_baseline"]) == (False, True)

    page = client.get(reverse("leaderboard", args=["mini"])).content.decode()
    assert page.count('<tr class="baseline"') == 2 and "≈ shortcut" in page


def test_every_version_column_shows_what_each_shortcut_scores_there_with_its_interval(
    client, mini_dataset, mini_variant_roots,
):
    from evaluation.baselines import SHORTCUTS, shortcut_scores
    from evaluation.datasets.manifest import centre_crops
    from evaluation.metrics import ScoreKind, logits_of

    versions = {"original": mini_dataset}
    for variant, root in mini_variant_roots.items():
        versions[variant] = dataset_register(benchmark=mini_dataset.benchmark, root=root, variant=variant)
    for dataset in versions.values():
        baselines_build(dataset=dataset)

    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    assert board["variants"] == ["original", "biased", "unbiased"]
    shown = {r["baseline"]: r for r in board["rows"] if r["is_baseline"]}
    for shortcut in SHORTCUTS:
        row = shown[shortcut.name]
        assert list(row["by_variant"]) == ["original", "biased", "unbiased"]
        for variant, dataset in versions.items():
            # Independently: the shortcut's scores on that version, scored by tests.reference (numpy, scikit-learn).
            line_ids, scores = shortcut_scores(dataset.manifest_url, shortcut, centre_crops(dataset.root))
            logits = logits_of(scores, ScoreKind.PROBABILITY)  # the shortcut scores probabilities
            expected = expected_metrics(split_rows(Path(dataset.root)), logits)["mean"]["acc_mean"]
            assert row["by_variant"][variant] == pytest.approx(expected), (shortcut.name, variant)
            low, high = row["by_variant_intervals"][variant]
            assert low <= row["by_variant"][variant] <= high and high - low < 0.15
        assert row["bias_gap"] == pytest.approx(row["by_variant"]["biased"] - row["by_variant"]["unbiased"])
        assert row["mean"]["acc_mean"] == pytest.approx(row["by_variant"]["original"])  # ranked on the original
    assert shown["jpeg-quality-only"]["by_variant"]["biased"] > 0.95  # the audit's shortcut, now on the board
    assert abs(shown["jpeg-quality-only"]["by_variant"]["unbiased"] - 0.5) < 0.1

    page = client.get(reverse("leaderboard", args=["mini"])).content.decode()
    row_html = page[page.index('data-baseline="jpeg-quality-only"'):]
    row_html = row_html[:row_html.index("</tr>")]
    value = shown["jpeg-quality-only"]["by_variant"]["biased"]
    low, high = shown["jpeg-quality-only"]["by_variant_intervals"]["biased"]
    assert f'data-variant="biased">{value:.4f}\n          <span class="ci">[{low:.4f}, {high:.4f}]</span>' in row_html
    assert 'data-metric="bias_gap">' in row_html and "Bias gap" in page
