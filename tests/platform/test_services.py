"""What the platform worker writes when the evaluation worker reports: shard_progress_record and
shard_done_record, fed real ShardProgress / ShardDone messages for a submission made by submission_create."""
from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluation.datasets.mini import MINI_GENERATORS
from evaluation.messages import ShardDone, ShardProgress
from evaluation.protocols import get_protocol
from evaluation.version import EVALUATOR_VERSION
from spectra.submissions.models import EvaluationRun, ImageScores, Result, Submission
from spectra.submissions.selectors import image_scores_get
from spectra.submissions.services.runs import shard_done_record, shard_progress_record
from spectra.submissions.services.submissions import submission_create
from tests import detector_files
from tests.reference import expected_metrics, split_rows


@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return detector_files.write_onnx(tmp_path_factory.mktemp("svc") / "d.onnx", seed=4, input_size=64).read_bytes()


@pytest.fixture
def submission(alice, mini_dataset, onnx_bytes, send, django_capture_on_commit_callbacks) -> Submission:
    with django_capture_on_commit_callbacks(execute=True):
        created = submission_create(
            owner=alice, name="svc", benchmark=mini_dataset.benchmark,
            upload=SimpleUploadedFile("d.onnx", onnx_bytes), declared_format="onnx", input_size=64,
        )
    assert send.call_count == 1
    return Submission.objects.get(pk=created.pk)


@pytest.fixture
def run(submission: Submission) -> EvaluationRun:
    return submission.runs.get()


@pytest.fixture(scope="module")
def test_split(mini_root: Path) -> tuple[list[int], list[dict]]:
    """(manifest line numbers, rows) of the test split, in manifest order."""
    with (mini_root / "manifest.jsonl").open(encoding="utf-8") as handle:
        line_numbers = [i for i, line in enumerate(handle) if json.loads(line)["split"] == "test"]
    return line_numbers, split_rows(mini_root)


def done_message(run: EvaluationRun, test_split, *, seed: int = 0, **changes) -> ShardDone:
    """A ShardDone as the worker would send it: real row ids and seeded float32 logits."""
    line_numbers, rows = test_split
    scores = np.random.default_rng(seed).normal(0.0, 3.0, len(rows)).astype(np.float32)
    message = ShardDone(
        run_id=run.pk, status="done", evaluator_version=EVALUATOR_VERSION,
        artifact_sha256=run.submission.artifact.sha256, manifest_sha256=run.submission.dataset.manifest_sha256,
        protocol=run.protocol, protocol_version=run.protocol_version, row_ids=list(line_numbers),
        scores=[float(s) for s in scores], timings={"load": 0.5, "score": 2.0},
    )
    return dataclasses.replace(message, **changes)


def metrics_of(message: ShardDone, test_split) -> dict[str, dict[str, float]]:
    """The independent computation (scikit-learn) of the numbers the message's scores imply."""
    return expected_metrics(test_split[1], np.asarray(message.scores, dtype=np.float64))


def progress_message(run: EvaluationRun, done: int = 128, stage: str = "scoring", total: int | None = None) -> ShardProgress:
    return ShardProgress(run_id=run.pk, done=done, total=run.total if total is None else total, stage=stage)


def refresh(*objects) -> None:
    for obj in objects:
        obj.refresh_from_db()


# --- progress ----------------------------------------------------------------------------------------


def test_progress_moves_the_run_and_the_submission_to_running(run, submission):
    assert (run.status, submission.status, run.heartbeat, submission.started) == ("queued", "queued", None, None)

    shard_progress_record(progress=progress_message(run, done=128, stage="scoring"))

    refresh(run, submission)
    assert (run.status, run.done, run.total, run.stage) == ("running", 128, 1104, "scoring")
    assert run.heartbeat is not None
    assert submission.status == "running" and submission.started is not None

    first_beat, started = run.heartbeat, submission.started
    shard_progress_record(progress=progress_message(run, done=512, stage="metrics"))
    refresh(run, submission)
    assert (run.done, run.stage) == (512, "metrics") and run.heartbeat > first_beat
    assert submission.started == started  # the start is when the first progress came


def test_progress_for_a_run_that_does_not_exist_is_dropped(run, submission):
    shard_progress_record(progress=ShardProgress(run_id=run.pk + 1000, done=1, total=2, stage="loading"))
    refresh(run, submission)
    assert (run.status, run.done, submission.status) == ("queued", 0, "queued")


# --- done --------------------------------------------------------------------------------------------


def test_done_writes_one_result_per_subset_with_provenance_and_the_scores(run, submission, test_split):
    message = done_message(run, test_split, seed=1)

    shard_done_record(outcome=message)

    refresh(run, submission)
    assert (submission.status, submission.error, submission.error_kind) == ("done", "", "")
    assert submission.finished is not None
    assert (run.status, run.done, run.total, run.stage) == ("done", 1104, 1104, "done")
    assert run.timings == {"load": 0.5, "score": 2.0}

    results = {r.subset: r for r in Result.objects.filter(submission=submission, condition="")}
    expected = metrics_of(message, test_split)
    assert sorted(results) == sorted(["mean", *MINI_GENERATORS])
    for subset, result in results.items():
        assert result.protocol == "cross-generator" and result.protocol_version == get_protocol("cross-generator").version
        assert result.evaluator_version == EVALUATOR_VERSION
        assert result.manifest_sha256 == submission.dataset.manifest_sha256 == run.submission.dataset.manifest_sha256
        assert result.artifact_sha256 == submission.artifact.sha256
        assert result.schema_version == Result.SCHEMA_VERSION == 3
        assert (result.dataset, result.condition) == (submission.dataset, "")
        assert {k: result.metrics[k] for k in expected[subset]} == pytest.approx(expected[subset], abs=1e-12)

    row_ids, scores = image_scores_get(scores=run.scores)
    assert run.scores.count == 1104
    assert row_ids.dtype == np.dtype("<i8") and scores.dtype == np.float64 and run.scores.kind == "logit"
    assert row_ids.tolist() == message.row_ids
    np.testing.assert_array_equal(scores, np.asarray(message.scores, dtype=np.float32))


def test_done_without_progress_first_still_finishes_the_submission(run, submission, test_split):
    shard_done_record(outcome=done_message(run, test_split))
    refresh(submission)
    assert submission.status == "done"


def test_the_same_done_message_twice_leaves_the_same_rows(run, submission, test_split):
    message = done_message(run, test_split, seed=2)
    shard_done_record(outcome=message)
    first = {(r.subset, r.condition): (r.pk, r.metrics) for r in Result.objects.filter(submission=submission)}

    shard_done_record(outcome=message)

    assert Result.objects.filter(submission=submission, condition="").count() == 1 + len(MINI_GENERATORS)
    assert {(r.subset, r.condition): (r.pk, r.metrics) for r in Result.objects.filter(submission=submission)} == first
    assert ImageScores.objects.filter(run=run).count() == 1
    refresh(submission)
    assert submission.status == "done"


def test_a_repeated_done_message_overwrites_the_numbers_in_place(run, submission, test_split):
    shard_done_record(outcome=done_message(run, test_split, seed=2))
    newer = done_message(run, test_split, seed=3)
    shard_done_record(outcome=newer)
    assert Result.objects.filter(submission=submission, condition="").count() == 1 + len(MINI_GENERATORS)
    stored = Result.objects.get(submission=submission, subset="mean").metrics
    expected = metrics_of(newer, test_split)["mean"]
    assert {k: stored[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    _, scores = image_scores_get(scores=ImageScores.objects.get(run=run))
    np.testing.assert_array_equal(scores, np.asarray(newer.scores, dtype=np.float32))


def test_under_s3_the_scores_are_one_object_and_a_retry_replaces_it(
        s3_settings, run, submission, test_split, django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    with django_capture_on_commit_callbacks(execute=True):
        shard_done_record(outcome=done_message(run, test_split, seed=2))
    first = ImageScores.objects.get(run=run)
    assert first.stored.startswith(f"scores/{submission.pk}/") and bytes(first.scores) == bytes(first.row_ids) == b""
    assert default_storage.exists(first.stored)
    newer = done_message(run, test_split, seed=3)
    with django_capture_on_commit_callbacks(execute=True):
        shard_done_record(outcome=newer)
    second = ImageScores.objects.get(run=run)
    assert default_storage.exists(second.stored) and not default_storage.exists(first.stored)  # no orphan
    row_ids, scores = image_scores_get(scores=second)
    assert row_ids.tolist() == newer.row_ids
    np.testing.assert_array_equal(scores, np.asarray(newer.scores, dtype=np.float32))
    stored = Result.objects.get(submission=submission, subset="mean").metrics
    expected = metrics_of(newer, test_split)["mean"]
    assert {k: stored[k] for k in expected} == pytest.approx(expected, abs=1e-12)


BAD_OUTCOMES = {
    "another artifact": lambda m: {"artifact_sha256": "0" * 64},
    "another manifest": lambda m: {"manifest_sha256": "f" * 64},
    "one row missing": lambda m: {"row_ids": m.row_ids[:-1], "scores": m.scores[:-1]},
    "one row twice": lambda m: {"row_ids": [*m.row_ids[:-1], m.row_ids[0]]},
    "a NaN score": lambda m: {"scores": [float("nan"), *m.scores[1:]]},
    "an infinite logit": lambda m: {"scores": [*m.scores[:-1], float("inf")]},
    "a logit float32 cannot hold": lambda m: {"scores": [1e39, *m.scores[1:]]},
    "another protocol version": lambda m: {"protocol_version": m.protocol_version + 1},
}


@pytest.mark.parametrize("case", list(BAD_OUTCOMES))
def test_a_done_message_that_fails_the_checks_fails_the_submission_on_our_side_and_writes_nothing(
    run, submission, test_split, case,
):
    good = done_message(run, test_split)
    shard_done_record(outcome=dataclasses.replace(good, **BAD_OUTCOMES[case](good)))

    refresh(run, submission)
    assert (submission.status, submission.error_kind) == ("failed", "platform")
    assert "failed the platform's checks" in submission.error and "no numbers were recorded" in submission.error
    assert submission.finished is not None
    assert run.status == "failed"
    assert Result.objects.count() == 0 and ImageScores.objects.count() == 0


def test_a_wrong_total_in_progress_does_not_make_a_short_done_message_acceptable(run, submission, test_split):
    shard_progress_record(progress=progress_message(run, done=10, total=10))
    good = done_message(run, test_split)
    shard_done_record(outcome=dataclasses.replace(good, row_ids=good.row_ids[:10], scores=good.scores[:10]))
    refresh(submission)
    assert submission.status == "failed" and Result.objects.count() == 0


def test_a_failed_message_stores_the_plain_words_error_as_the_users_fault(run, submission, test_split):
    error = "The detector returned 3 values per image; expected 1 (a logit) or 2 ([real, generated])."
    shard_progress_record(progress=progress_message(run, done=0, stage="loading"))
    shard_done_record(outcome=done_message(
        run, test_split, status="failed", error=error, error_kind="user", row_ids=[], scores=[]))

    refresh(run, submission)
    assert (submission.status, submission.error, submission.error_kind) == ("failed", error, "user")
    assert submission.finished is not None and run.status == "failed"
    assert Result.objects.count() == 0 and ImageScores.objects.count() == 0


def test_a_done_message_for_a_run_that_does_not_exist_is_dropped(run, submission, test_split):
    shard_done_record(outcome=done_message(run, test_split, run_id=run.pk + 1000))
    refresh(run, submission)
    assert (run.status, submission.status) == ("queued", "queued")
    assert Result.objects.count() == 0 and ImageScores.objects.count() == 0


def test_progress_arriving_after_done_does_not_move_the_run_back(run, submission, test_split):
    shard_done_record(outcome=done_message(run, test_split))
    refresh(run)
    heartbeat = run.heartbeat

    shard_progress_record(progress=progress_message(run, done=5, stage="scoring"))

    refresh(run, submission)
    assert (run.status, run.done, run.stage, run.heartbeat) == ("done", 1104, "done", heartbeat)
    assert submission.status == "done"


def test_progress_arriving_after_a_failure_does_not_revive_the_submission(run, submission, test_split):
    shard_done_record(outcome=done_message(
        run, test_split, status="failed", error="The file could not be loaded.", error_kind="user"))
    shard_progress_record(progress=progress_message(run, done=5))
    refresh(run, submission)
    assert (run.status, submission.status) == ("failed", "failed")


def test_scores_for_rows_outside_the_runs_split_fail_the_checks(run, submission, test_split):
    line_numbers, _ = test_split
    train_line = min(line_numbers) - 1  # the mini manifest lists train, val, then test rows
    bad = done_message(run, test_split, row_ids=[train_line, *line_numbers[1:]])
    shard_done_record(outcome=bad)
    refresh(run, submission)
    assert (submission.status, submission.error_kind) == ("failed", "platform")
    assert "not in the test split" in submission.error and not Result.objects.exists()


# --- logits, and scores stored as probabilities before evaluator 0.3 ---------------------------------


@pytest.fixture(scope="module")
def wide_logits_bytes(mini_root: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A TorchScript detector whose logits run from −60 to 60 over the test images (a linear map of the mean pixel)."""
    from tests.reference import load_images

    scale, centre = detector_files.spread_logit_map(load_images(mini_root, split_rows(mini_root), 64))
    path = tmp_path_factory.mktemp("wide") / "wide.pt"
    return detector_files.write_spread_logits(path, scale=scale, centre=centre).read_bytes()


def test_wide_logits_through_the_worker_and_the_platform_give_scikit_learns_numbers_and_old_rows_recompute(
    alice, mini_dataset, mini_root, wide_logits_bytes, send,
):
    from evaluation.runner import run_shard
    from spectra.submissions.services.results import submission_results_recompute
    from spectra.submissions.services.runs import shard_request_build

    submission = submission_create(owner=alice, name="wide", benchmark=mini_dataset.benchmark, input_size=64,
                                   upload=SimpleUploadedFile("wide.pt", wide_logits_bytes), declared_format="torchscript")
    run = submission.runs.get()
    outcome = run_shard(shard_request_build(run=run), lambda _: None)
    assert outcome.status == "done", outcome.error
    shard_done_record(outcome=outcome)
    submission.refresh_from_db()
    assert submission.status == "done", submission.error

    rows = split_rows(mini_root)
    logits = np.asarray(outcome.scores)
    assert logits.min() < -59 and logits.max() > 59
    exact = expected_metrics(rows, logits)  # scikit-learn on the exact logits
    for subset, values in exact.items():
        stored = Result.objects.get(submission=submission, subset=subset, condition="").metrics
        for name in ("ap", "roc_auc", "acc_mean"):
            assert stored[name] == pytest.approx(values[name], abs=1e-12), (subset, name)

    # The same scores as the platform stored them before evaluator 0.3: float32 probabilities, kind "probability".
    probabilities = (1 / (1 + np.exp(-logits))).astype("<f4")
    scores = ImageScores.objects.get(run=run)
    scores.scores, scores.kind = zlib.compress(probabilities.tobytes()), "probability"
    scores.save()
    assert submission_results_recompute(submission=submission) == 1
    tied = expected_metrics(rows, probabilities.astype(np.float64))  # scikit-learn on what was stored
    ap_moved = 0.0
    for subset, values in tied.items():
        stored = Result.objects.get(submission=submission, subset=subset, condition="").metrics
        for name in ("ap", "roc_auc"):  # (expected_metrics' accuracies cut at logit 0, not at probability 0.5)
            assert stored[name] == pytest.approx(values[name], abs=1e-12), (subset, name)
        assert stored["acc_mean"] == exact[subset]["acc_mean"]
        ap_moved = max(ap_moved, abs(stored["ap"] - exact[subset]["ap"]))
    assert ap_moved > 1e-4  # the ties at probability 1.0 changed AP: why scores are stored as logits now
