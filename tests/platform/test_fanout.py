"""Fan-out: a submission's shards over every dataset version, aggregated once all are in; the bias gap."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from evaluation.baselines import SHORTCUTS, shortcut_scores
from evaluation.messages import ShardDone
from evaluation.metrics import ScoreKind, logits_of
from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.services import dataset_register
from spectra.submissions.models import EvaluationRun, Result, Submission
from spectra.submissions.services.runs import shard_done_record
from spectra.submissions.services.submissions import submission_create
from tests import detector_files
from tests.reference import expected_metrics, split_rows

JPEG_ONLY = SHORTCUTS[0]


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return detector_files.write_onnx(tmp_path_factory.mktemp("fan") / "d.onnx", seed=2, input_size=32).read_bytes()


def _create(alice, dataset, data: bytes) -> Submission:
    return submission_create(owner=alice, name="fan", benchmark=dataset.benchmark,
                                      upload=SimpleUploadedFile("d.onnx", data), declared_format="onnx", input_size=32)


def _line_ids(root: Path, split: str = "test") -> list[int]:
    with (root / "manifest.jsonl").open(encoding="utf-8") as handle:
        return [i for i, line in enumerate(handle) if json.loads(line)["split"] == split]


def _done(run: EvaluationRun, row_ids: list[int], scores: list[float]) -> ShardDone:
    return ShardDone(
        run_id=run.pk, status="done", evaluator_version=EVALUATOR_VERSION, artifact_sha256=run.submission.artifact.sha256,
        manifest_sha256=run.dataset.manifest_sha256, protocol=run.protocol, protocol_version=run.protocol_version,
        row_ids=row_ids, scores=scores, worker=f"eval-{run.shard % 2}",
    )


def _finish_run(run: EvaluationRun, scores_by_line: dict[int, float], lines: list[int]) -> None:
    ids = lines[run.first_row:run.last_row]
    shard_done_record(outcome=_done(run, ids, [scores_by_line[i] for i in ids]))


def test_shards_cover_the_split_and_aggregate_once_all_are_in(settings, alice, mini_dataset, mini_root, onnx_bytes, send,
                                                              django_capture_on_commit_callbacks):
    settings.SPECTRA_SHARD_IMAGES = 300
    with django_capture_on_commit_callbacks(execute=True):
        submission = _create(alice, mini_dataset, onnx_bytes)
    runs = list(submission.runs.order_by("shard"))
    assert [(r.shard, r.first_row, r.last_row, r.total) for r in runs] == [
        (0, 0, 300, 300), (1, 300, 600, 300), (2, 600, 900, 300), (3, 900, 1104, 204)]
    send.assert_called_once_with(runs=runs)

    lines = _line_ids(mini_root)
    scores = dict(zip(lines, np.random.default_rng(9).normal(0.0, 3.0, len(lines)).tolist(), strict=True))
    for run in reversed(runs[1:]):  # out of order, and once twice: a retried shard overwrites
        _finish_run(run, scores, lines)
        assert not Result.objects.filter(submission=submission).exists()
    _finish_run(runs[2], scores, lines)
    _finish_run(runs[0], scores, lines)

    submission.refresh_from_db()
    assert submission.status == "done"
    expected = expected_metrics(split_rows(mini_root), np.array([scores[i] for i in lines], dtype=np.float32).astype(float))
    stored = {r.subset: r.metrics for r in Result.objects.filter(submission=submission, condition="")}
    assert set(stored) == set(expected)
    for subset, metrics in expected.items():
        assert {k: stored[subset][k] for k in metrics} == pytest.approx(metrics, abs=1e-12)
    assert {r.worker for r in submission.runs.all()} == {"eval-0", "eval-1"}


def test_a_failed_shard_fails_the_submission_and_nothing_is_aggregated(settings, alice, mini_dataset, mini_root,
                                                                       onnx_bytes, send):
    settings.SPECTRA_SHARD_IMAGES = 600
    submission = _create(alice, mini_dataset, onnx_bytes)
    first, second = submission.runs.order_by("shard")
    lines = _line_ids(mini_root)
    _finish_run(first, dict.fromkeys(lines, 0.5), lines)
    shard_done_record(outcome=dataclasses.replace(_done(second, [], []), status="failed",
                                                           error="out of memory", error_kind="user"))
    submission.refresh_from_db()
    assert (submission.status, submission.error) == ("failed", "out of memory")
    assert not Result.objects.filter(submission=submission).exists()


def test_a_detector_that_keys_on_jpeg_scores_high_on_the_biased_version_near_chance_on_the_unbiased_one(
    client, alice, mini_dataset, mini_variant_roots, onnx_bytes, send,
):
    for variant, root in mini_variant_roots.items():
        dataset_register(benchmark=mini_dataset.benchmark, root=root, variant=variant)
    submission = _create(alice, mini_dataset, onnx_bytes)
    assert sorted(r.dataset.variant for r in submission.runs.all()) == ["biased", "original", "unbiased"]
    for run in submission.runs.select_related("dataset"):
        # The detector's scores are exactly what JPEG format and quality say (the shortcut, as a detector).
        row_ids, probabilities = shortcut_scores(run.dataset.manifest_url, JPEG_ONLY)
        shard_done_record(outcome=_done(run, row_ids, logits_of(probabilities, ScoreKind.PROBABILITY).tolist()))

    board = client.get(reverse("api:leaderboard", args=["mini"])).json()
    assert board["variants"] == ["original", "biased", "unbiased"]
    row = next(r for r in board["rows"] if r["submission_id"] == submission.pk)
    assert row["by_variant"]["biased"] > 0.95
    assert abs(row["by_variant"]["unbiased"] - 0.5) < 0.1
    assert row["bias_gap"] == pytest.approx(row["by_variant"]["biased"] - row["by_variant"]["unbiased"])
    assert row["bias_gap"] > 0.35
    low, high = row["bias_gap_interval"]
    assert low <= row["bias_gap"] <= high and low > 0.2  # the gap is far from zero, not noise
    page = client.get(reverse("leaderboard", args=["mini"])).content.decode()
    assert "Bias gap" in page and f'data-metric="bias_gap">{row["bias_gap"]:.4f} <span class="ci">[' in page
    detail = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert 'id="results-biased"' in detail and 'id="results-unbiased"' in detail


def test_robustness_results_are_a_generator_by_condition_matrix_with_areas(
    settings, client, alice, mini_dataset, mini_root, onnx_bytes, send,
):
    settings.SPECTRA_PROTOCOLS = ["cross-generator", "jpeg-robustness"]
    settings.SPECTRA_SHARD_IMAGES = 700
    submission = _create(alice, mini_dataset, onnx_bytes)
    lines = _line_ids(mini_root)
    qualities = [100, 95, 90, 80, 70, 60, 50, 30]
    rng = np.random.default_rng(4)
    clean = rng.normal(0.0, 3.0, len(lines))
    # Logits that drift towards 0 as the quality drops: the detector loses its signal under JPEG.
    matrix = np.stack([clean * (q / 100) ** 2 for q in qualities])
    for run in submission.runs.order_by("protocol", "shard"):
        ids = lines[run.first_row:run.last_row]
        if run.protocol == "cross-generator":
            shard_done_record(outcome=_done(run, ids, clean[run.first_row:run.last_row].tolist()))
        else:
            part = matrix[:, run.first_row:run.last_row]
            shard_done_record(outcome=dataclasses.replace(
                _done(run, ids, part.ravel().tolist()), conditions=[f"jpeg-{q}" for q in qualities]))
    submission.refresh_from_db()
    assert submission.status == "done", submission.error
    jpeg = Result.objects.filter(submission=submission, protocol="jpeg-robustness")
    rows = split_rows(mini_root)
    for k, q in enumerate(qualities):
        expected = expected_metrics(rows, matrix[k].astype(np.float32).astype(float))
        stored = jpeg.get(subset="vae", condition=f"jpeg-{q}").metrics
        assert stored["acc_mean"] == pytest.approx(expected["vae"]["acc_mean"])
    by_quality = [jpeg.get(subset="mean", condition=f"jpeg-{q}").metrics["acc_mean"] for q in qualities]
    area = jpeg.get(subset="mean", condition="area")
    assert area.metrics["acc_mean_area"] == pytest.approx(
        np.trapezoid(by_quality[::-1], qualities[::-1]) / (qualities[0] - qualities[-1]))
    assert area.intervals["acc_mean_area"][0] <= area.metrics["acc_mean_area"] <= area.intervals["acc_mean_area"][1]
    page = client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert 'id="robustness-jpeg-robustness"' in page and 'id="areas-jpeg-robustness"' in page
    # The clean table stays the cross-generator one.
    assert page.count('<tr data-subset="mean">') == 2  # results table + areas table


def test_results_are_recomputed_from_stored_scores_without_a_detector(alice, mini_dataset, mini_root, onnx_bytes, send):
    import io

    from django.core.management import call_command

    submission = _create(alice, mini_dataset, onnx_bytes)
    lines = _line_ids(mini_root)
    scores = dict(zip(lines, np.random.default_rng(3).normal(0.0, 3.0, len(lines)).tolist(), strict=True))
    _finish_run(submission.runs.get(), scores, lines)
    before = {r.subset: (r.metrics, r.intervals) for r in Result.objects.filter(submission=submission)}
    Result.objects.filter(submission=submission).delete()
    out = io.StringIO()
    call_command("recompute_results", "--submission", str(submission.pk), stdout=out)
    after = {r.subset: (r.metrics, r.intervals) for r in Result.objects.filter(submission=submission)}
    assert after == before and "1 (version, protocol) group(s) recomputed" in out.getvalue()
