"""The platform's side of the leases, message by message, on a clock the test sets: heartbeats renew a lease,
messages of a superseded attempt are ignored, a late result never duplicates, and the reaper's rules."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from evaluation.messages import STARTED_STAGE, WorkerAlive
from evalworker.broker import lease_seconds, shard_attempts
from spectra.submissions.models import EvaluationWorker, ImageScores, Result
from spectra.submissions.services import leases
from spectra.submissions.services.leases import runs_reap, worker_alive_record
from spectra.submissions.services.runs import shard_done_record, shard_progress_record
from spectra.submissions.services.submissions import submission_create
from tests.platform.test_services import done_message, progress_message, refresh
from tests.reference import split_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(alice, mini_dataset, onnx_bytes, send, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = submission_create(owner=alice, name="leased", benchmark=mini_dataset.benchmark, input_size=32,
                                    upload=SimpleUploadedFile("d.onnx", onnx_bytes), declared_format="onnx")
    return created.runs.get()


@pytest.fixture(scope="module")
def test_split(mini_root, test_line_numbers) -> tuple[list[int], list[dict]]:
    return test_line_numbers, split_rows(mini_root)


def _later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def _alive(seconds_later: float = 0.0) -> None:
    """An evaluation worker that announced itself ``seconds_later`` from now (the reaper's clock is the test's)."""
    worker_alive_record(alive=WorkerAlive(worker="eval@test", evaluator_version="x", sandbox="bubblewrap"))
    EvaluationWorker.objects.update(last_seen=_later(seconds_later))


def _started(run, attempt: int = 1):
    return dataclasses.replace(progress_message(run, done=0, stage=STARTED_STAGE), attempt=attempt)


def test_a_heartbeat_renews_the_lease_and_counts_the_delivery(run) -> None:
    shard_progress_record(progress=_started(run))
    refresh(run)
    assert run.status == "running" and run.deliveries == 1
    assert run.lease_expires == pytest.approx(timezone.now() + timedelta(seconds=lease_seconds()), abs=timedelta(seconds=5))
    shard_progress_record(progress=progress_message(run, done=10))
    refresh(run)
    assert run.deliveries == 1 and run.done == 10


def test_a_silent_shard_is_sent_again_as_a_new_attempt_and_its_old_messages_are_ignored(run, send, test_split,
                                                                                        django_capture_on_commit_callbacks) -> None:
    shard_progress_record(progress=_started(run))
    _alive(lease_seconds())
    with django_capture_on_commit_callbacks(execute=True):
        reaped = runs_reap(now=_later(lease_seconds() + 1))
    refresh(run)
    assert reaped.resent == [run.pk] and run.attempt == 2 and run.status == "queued"
    assert send.call_args.kwargs["runs"][0].attempt == 2  # the new message names the new attempt
    shard_progress_record(progress=progress_message(run, done=50))  # attempt 1 is still talking: ignored
    refresh(run)
    assert run.status == "queued" and run.done == 0
    shard_done_record(outcome=done_message(run, test_split, status="failed", error="late failure", error_kind="user"))
    refresh(run, run.submission)
    assert run.status == "queued" and run.submission.status != "failed"  # a superseded attempt's failure


def test_a_late_result_of_an_older_attempt_counts_once_and_the_newer_one_overwrites(run, test_split) -> None:
    run.attempt = 2
    run.save(update_fields=["attempt"])
    shard_done_record(outcome=done_message(run, test_split, seed=1))  # attempt 1 came back late: first result
    refresh(run, run.submission)
    assert run.status == "done" and run.submission.status == "done"
    first = {(r.subset, r.condition): r.metrics for r in Result.objects.filter(submission=run.submission)}
    shard_done_record(outcome=done_message(run, test_split, seed=1, attempt=2))  # the current attempt: same rows
    shard_done_record(outcome=done_message(run, test_split, seed=2))  # another old one after it: ignored
    assert ImageScores.objects.filter(run=run).count() == 1
    assert {(r.subset, r.condition): r.metrics for r in Result.objects.filter(submission=run.submission)} == first
    assert Result.objects.filter(submission=run.submission).count() == len(first)


def test_after_its_attempts_a_silent_shard_fails_with_the_reason(run) -> None:
    _alive()
    run.attempt, run.status = shard_attempts(), "running"
    run.lease_expires = timezone.now()
    run.save(update_fields=["attempt", "status", "lease_expires"])
    assert runs_reap(now=_later(1)).failed == [run.pk]
    refresh(run, run.submission)
    assert run.status == "failed" and run.submission.status == "failed"
    assert f"on each of its {shard_attempts()} attempts" in run.submission.error


def test_with_no_worker_alive_a_running_shard_fails_at_once(run) -> None:
    shard_progress_record(progress=_started(run))
    EvaluationWorker.objects.all().delete()
    assert runs_reap(now=_later(lease_seconds() + 1)).failed == [run.pk]
    refresh(run.submission)
    assert "No evaluation worker has been heard from" in run.submission.error


def test_a_queued_shard_waits_its_turn(run) -> None:
    run.lease_expires = timezone.now()
    run.save(update_fields=["lease_expires"])
    reaped = runs_reap(now=_later(1))  # no worker alive, first attempt: a worker may come later
    refresh(run)
    assert reaped.resent == reaped.failed == [] and run.status == "queued" and run.lease_expires > timezone.now()


def test_a_shard_started_more_often_than_its_attempts_is_given_up(run) -> None:
    for _ in range(shard_attempts() + 1):
        shard_progress_record(progress=_started(run))
    refresh(run, run.submission)
    assert run.deliveries == shard_attempts() + 1 and run.status == "failed"
    assert "its evaluation worker stopped each time" in run.submission.error


def test_one_failed_shard_cancels_the_others(alice, mini_dataset, onnx_bytes, send, settings, test_split,
                                             django_capture_on_commit_callbacks) -> None:
    settings.SPECTRA_SHARD_IMAGES = 400
    with django_capture_on_commit_callbacks(execute=True):
        created = submission_create(owner=alice, name="three", benchmark=mini_dataset.benchmark, input_size=32,
                                    upload=SimpleUploadedFile("d.onnx", onnx_bytes), declared_format="onnx")
    first, *others = created.runs.order_by("shard")
    shard_done_record(outcome=dataclasses.replace(done_message(first, test_split), status="failed", row_ids=[],
                                                  scores=[], error="bad outputs", error_kind="user"))
    for other in others:
        refresh(other)
        assert other.status == "failed" and other.stage == "cancelled"
        shard_done_record(outcome=dataclasses.replace(done_message(other, test_split), row_ids=[], scores=[]))
        refresh(other)
        assert other.status == "failed"  # a late message for a cancelled shard changes nothing


def test_a_restarted_broker_that_lost_its_queue_gets_the_queued_shards_again(run, send, monkeypatch,
                                                                             django_capture_on_commit_callbacks) -> None:
    """The broker's side is tested for real in test_faults (Redis restarted); here its answers are set."""
    run.lease_expires = _later(lease_seconds())  # sent, its lease not expired: only the restart makes it lost
    run.save(update_fields=["lease_expires"])
    states = iter([("redis run id A", 1), ("redis run id B", 0)])
    monkeypatch.setattr(leases, "_broker_state", lambda: next(states))
    assert runs_reap().resent == []  # first sight of the broker
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reap().resent == [run.pk]  # a new run id and an empty queue: its message is gone
    refresh(run)
    assert run.attempt == 2 and send.call_count == 2


EXPIRED = "The presigned link to http://store/spectra/artifacts/a.onnx has expired (the store said: Request has expired)."


def test_an_expired_link_sends_the_shard_again_with_fresh_links(run, send, test_split,
                                                                django_capture_on_commit_callbacks) -> None:
    shard_progress_record(progress=_started(run))
    with django_capture_on_commit_callbacks(execute=True):
        shard_done_record(outcome=done_message(run, test_split, status="failed", error=EXPIRED, error_kind="platform",
                                               retryable=True, row_ids=[], scores=[]))
    refresh(run, run.submission)
    assert run.attempt == 2 and run.status == "queued" and run.submission.status != "failed"
    assert run.error.startswith("Attempt 1: The presigned link") and send.call_args.kwargs["runs"][0].attempt == 2


def test_an_expired_link_on_the_last_attempt_fails_the_shard_in_those_words(run, test_split) -> None:
    run.attempt = shard_attempts()
    run.save(update_fields=["attempt"])
    shard_done_record(outcome=dataclasses.replace(
        done_message(run, test_split, status="failed", error=EXPIRED, error_kind="platform", retryable=True,
                     row_ids=[], scores=[]), attempt=shard_attempts()))
    refresh(run, run.submission)
    assert run.status == "failed" and run.submission.error == EXPIRED
