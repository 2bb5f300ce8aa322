"""A person's upload is evaluated before the zoo's queued shards, by real workers, on whichever broker the suite
runs with (the filesystem transport by default; CI also runs it with CELERY_BROKER_URL=redis://…)."""
from __future__ import annotations

import itertools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from spectra.submissions.models import EvaluationRun
from spectra.submissions.services.submissions import submission_create
from spectra.zoo.services import zoo_owner
from tests import detector_files

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

ZOO_SHARDS, PERSON_SHARDS = 12, 4


def test_a_persons_shards_start_before_the_zoo_shards_still_queued(settings, alice, mini_dataset, test_line_numbers,
                                                                 workers, tmp_path):
    data = detector_files.write_onnx(tmp_path / "d.onnx", seed=3, input_size=32).read_bytes()
    total = len(test_line_numbers)
    settings.SPECTRA_SHARD_IMAGES = -(-total // ZOO_SHARDS)
    zoo = submission_create(owner=zoo_owner(), name="zoo row", benchmark=mini_dataset.benchmark,
                                     upload=SimpleUploadedFile("d.onnx", data), declared_format="onnx",
                                     input_size=32, zoo_entry="spectral-lr", zoo_trained_on="original")
    settings.SPECTRA_SHARD_IMAGES = -(-total // PERSON_SHARDS)
    person = submission_create(owner=alice, name="mine", benchmark=mini_dataset.benchmark,
                                        upload=SimpleUploadedFile("d.onnx", data), declared_format="onnx",
                                        input_size=32)
    assert (zoo.runs.count(), person.runs.count()) == (ZOO_SHARDS, PERSON_SHARDS)
    assert workers.wait_for(person.pk).status == "done" and workers.wait_for(zoo.pk).status == "done"

    # Each worker runs one shard at a time, so the order in which its shards were recorded done is the order in
    # which it took them. Taking people first means: once a worker has taken a person's shard, it takes only the
    # person's shards until none is left, then zoo shards again (round robin would alternate queues).
    runs = EvaluationRun.objects.filter(submission__in=[zoo, person]).order_by("heartbeat")
    taken: dict[str, list[str]] = {}
    for run in runs:
        taken.setdefault(run.worker, []).append("P" if run.submission_id == person.pk else "Z")
    for worker, sequence in taken.items():
        blocks = [kind for kind, _ in itertools.groupby(sequence)]
        assert blocks in (["Z"], ["P"], ["P", "Z"], ["Z", "P"], ["Z", "P", "Z"]), (worker, "".join(sequence))
    # Not vacuous: zoo shards were still waiting when the person's shards were taken.
    assert any(s.index("P") < len(s) - 1 - s[::-1].index("Z") for s in taken.values() if "P" in s and "Z" in s), taken
