"""Many machines, shown on one: the web process (this test process) and a platform worker on a real object store,
and an evaluation worker whose own mount namespace (bubblewrap) hides the media and dataset folders. A detector
evaluated this way scores exactly as it does with local storage."""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from evaluation.sandbox.launch import bubblewrap_problem
from evaluation.storage import ENDPOINT_VARIABLE, READ_KEY_VARIABLES
from spectra.benchmarks.store import dataset_store
from spectra.core import objectstore
from spectra.core.env import S3_WRITE_VARIABLES
from spectra.submissions.models import ImageScores
from tests.conftest import WORKER_MEDIA_ROOT, Workers
from tests.detector_files import write_onnx
from tests.platform.conftest import use_store
from tests.seaweed import ADMIN, BUCKET, READER

pytestmark = [pytest.mark.workers, pytest.mark.store, pytest.mark.django_db(transaction=True)]
INPUT_SIZE = 64


def _unseeing(command: list[str], hidden: list[Path]) -> list[str]:
    """``command`` in a mount namespace of its own where each ``hidden`` folder is an empty tmpfs."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bubblewrap is missing: `apt-get install bubblewrap` enables this test")
    masks = [arg for folder in hidden for arg in ("--tmpfs", str(folder))]
    return [bwrap, "--dev-bind", "/", "/", *masks, "--die-with-parent", "--", *command]


@contextmanager
def workers_on_the_store(workers: Workers, endpoint: str, hidden: list[Path]) -> Iterator[dict[str, str]]:
    """The session's workers swapped for a platform worker on the store (the platform's key) and one evaluation
    worker that holds only the read key and cannot see ``hidden``; the session's workers come back after."""
    saved, running = dict(workers.commands), [name for name, _ in workers.processes]
    workers.kill(*running)
    platform_command, platform_env = saved["platform worker"]
    workers.start("platform worker", platform_command, {
        **platform_env, "SPECTRA_STORAGE": "s3", ENDPOINT_VARIABLE: endpoint, "SPECTRA_S3_BUCKET": BUCKET,
        **dict(zip(S3_WRITE_VARIABLES, ADMIN, strict=True))})
    name = workers.evaluation_workers()[0]
    command, env = saved[name]
    reader_env = {**env, ENDPOINT_VARIABLE: endpoint, **dict(zip(READ_KEY_VARIABLES, READER, strict=True))}
    workers.start(name, _unseeing(command, hidden), reader_env)
    try:
        yield reader_env
    finally:
        workers.kill(*[n for n, _ in workers.processes])
        workers.commands = saved
        for again in running:
            workers.start(again)


def _evaluate(client, path: Path, workers: Workers) -> dict[str, tuple[dict, dict]]:
    with path.open("rb") as handle:
        response = client.post(reverse("submit"), {
            "name": "store or disk", "benchmark": "mini", "format": "onnx", "input_size": INPUT_SIZE, "file": handle,
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = workers.wait_for(int(response.url.rstrip("/").split("/")[-1]))
    assert submission.status == "done", submission.error
    return {(r.subset, r.condition): (r.metrics, r.intervals) for r in submission.results.all()}


def test_a_submission_evaluated_from_the_store_by_a_worker_without_the_disks_scores_as_from_local_storage(
        alice_client, django_user_model, client, mini_dataset, mini_root: Path, workers: Workers, store: str,
        settings, media_root: Path, tmp_path: Path) -> None:
    detector = write_onnx(tmp_path / "detector.onnx", seed=11, input_size=INPUT_SIZE)
    from_disk = _evaluate(alice_client, detector, workers)

    use_store(settings, store)
    dataset_store(dataset=mini_dataset, say=lambda line: None)
    assert mini_dataset.root.startswith(f"s3://{BUCKET}/datasets/")
    hidden = [mini_root.parent, media_root, WORKER_MEDIA_ROOT, Path(django_settings.SPECTRA_DATA_ROOT)]
    for folder in hidden:
        folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(_unseeing([sys.executable, "-c", "import os, sys; print(os.listdir(sys.argv[1]))",
                                      str(mini_root.parent)], hidden), capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "[]"  # the evaluation worker's view of the local dataset folder
    bob = django_user_model.objects.create_user(username="bob", password="correct horse battery")
    client.force_login(bob)  # a new owner: the artifact goes up to the store, not reused from disk
    with workers_on_the_store(workers, store, hidden) as reader_env:
        assert not set(S3_WRITE_VARIABLES) & set(reader_env) and "DATABASE_URL" not in reader_env
        from_store = _evaluate(client, detector, workers)
    assert from_store == from_disk
    submission = bob.submissions.get()
    isolation = client.get(reverse("api:submission-detail", args=[submission.pk])).json()["isolation"]
    assert isolation["sandbox"] == ("process" if bubblewrap_problem() else "bubblewrap")  # nested in the worker's
    for scores in ImageScores.objects.filter(run__submission=submission):  # the scores are in the store too
        assert scores.stored and objectstore.client().head_object(Bucket=BUCKET, Key=scores.stored)["ContentLength"]
    stored = submission.artifact.file.name
    assert objectstore.client().head_object(Bucket=BUCKET, Key=stored)["ContentLength"] == detector.stat().st_size
