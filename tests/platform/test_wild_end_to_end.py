"""The wild protocol, calibration and the reproduce command end to end: a TorchScript upload is scored by a real
evaluation worker under the chains; the page, the chains download, the leaderboard tab and the API show it; and the
command each result shows, run on the same files, prints the stored numbers to the last digit."""
from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from evaluation.protocols import wild
from evaluation.wild import chain_for, describe_chain
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.submissions.models import Result
from spectra.submissions.reproduce import reproductions
from spectra.submissions.selectors import image_scores_get
from tests.detector_files import write_torchscript

# `analyses`: CI's second pass (the embedded broker and database) leaves the slow end-to-end tests out.
pytestmark = [pytest.mark.workers, pytest.mark.analyses, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
SIZE = 64


def _strided_version(root: Path, target: Path, stride: int) -> Path:
    """Every ``stride``-th test image of ``root`` (every generator stays in), linked, with their manifest lines."""
    lines, position = [], 0
    for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] != "test":
            continue
        if position % stride == 0:
            lines.append(line)
            (target / row["path"]).parent.mkdir(parents=True, exist_ok=True)
            (target / row["path"]).symlink_to(root / row["path"])
        position += 1
    (target / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _reproduced(command: str, detector: Path, dataset: Path) -> dict:
    """Run the page's command as a user would, with its two shell variables set to the files."""
    assert command.startswith('python -m evaluation "$DETECTOR" "$DATASET" ')
    argv = shlex.split(command)[3:]
    done = subprocess.run([sys.executable, "-m", "evaluation", str(detector), str(dataset), *argv[2:]],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["results"]


def test_the_wild_protocol_runs_end_to_end_and_its_reproduce_command_prints_the_stored_numbers(
        alice_client, mini_root, workers, tmp_path, settings) -> None:
    settings.SPECTRA_PROTOCOLS = ["cross-generator", wild.NAME]
    settings.SPECTRA_SHARD_IMAGES = 60  # two shards: the command must repeat them
    benchmark = benchmark_upsert(slug="mini", name="Mini (synthetic)", description="test", is_synthetic=True)
    dataset = dataset_register(benchmark=benchmark, root=_strided_version(mini_root, tmp_path / "strided", stride=10),
                               hidden_splits=())  # a public test split: its images are listed with their chains
    detector = write_torchscript(tmp_path / "d.pt", seed=3)
    with detector.open("rb") as handle:
        response = alice_client.post(reverse("submit"), {"name": "wild one", "benchmark": "mini", "format": "torchscript",
                                                         "input_size": SIZE, "file": handle})
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = workers.wait_for(int(response.url.rstrip("/").split("/")[-1]))
    assert submission.status == "done", submission.error
    runs = list(submission.runs.filter(protocol=wild.NAME).order_by("first_row"))
    assert len(runs) == 2 and runs[0].scores.conditions == wild.conditions(wild.PROTOCOL.default_config)

    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    for fragment in ('id="wild-results"', '"wild-kinds"', 'id="reliability"', 'data-metric="ece"',
                     'class="reproduce" data-protocol="wild"', 'class="reproduce" data-protocol="cross-generator"'):
        assert fragment in page, fragment

    download = alice_client.get(reverse("submission-wild-chains", args=[submission.pk]))
    assert download.status_code == 200, download.content.decode()[:2000]
    chains = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(chains) == 1 + len((Path(dataset.root) / "manifest.jsonl").read_text().splitlines())
    _, logits = image_scores_get(scores=runs[0].scores)
    first = dict(zip(chains[0], chains[1], strict=True))
    assert first["chain"] == describe_chain(chain_for(first["sha256"], 0)) and first["path"] and first["label"]
    assert float(first["logit chain-s0"]) == pytest.approx(logits.reshape(len(runs[0].scores.conditions), -1)[1, 0], abs=1e-6)

    dataset.hidden_splits = ["test"]  # a hidden split's files are never tied to its manifest order or to logits
    dataset.save()
    hidden = alice_client.get(reverse("submission-wild-chains", args=[submission.pk]))
    assert hidden.status_code == 404 and "python -m evaluation.wild" in hidden.content.decode()
    dataset.hidden_splits = []
    dataset.save()

    tab = alice_client.get(reverse("leaderboard-analysis", args=["mini", "robust-auc"])).content.decode()
    assert f'data-submission="{submission.pk}"' in tab and 'data-metric="roc_auc_drop"' in tab
    api = alice_client.get(reverse("api:submission-results", args=[submission.pk])).json()
    assert all(entry["reproduce"] for entry in api)

    results = list(submission.results.select_related("dataset"))
    for (_, protocol), reproduction in reproductions(submission=submission, results=results).items():
        printed = _reproduced(reproduction.command, detector, Path(dataset.root))
        stored = {(r.subset if not r.condition else f"{r.subset}/{r.condition}"): r
                  for r in results if r.protocol == protocol}
        assert set(printed) == set(stored), protocol
        for key, result in stored.items():  # to the last digit: equal floats, not approximately equal
            assert printed[key]["metrics"] == result.metrics, (protocol, key)
            assert printed[key]["intervals"] == result.intervals, (protocol, key)
    drop = Result.objects.get(submission=submission, protocol=wild.NAME, subset="mean", condition=wild.DROP)
    assert np.isfinite(drop.metrics["roc_auc_drop"]) and drop.intervals["roc_auc_drop"] is not None
