"""run_shard in-process on the real mini benchmark: numbers equal a direct computation; failures in words."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluation.datasets.manifest import file_sha256, manifest_sha256
from evaluation.messages import MessageError, ShardDone, ShardProgress, ShardRequest
from evaluation.metrics import ScoreKind
from evaluation.protocols import get_protocol
from evaluation.runner import run_shard
from evaluation.summary import summary_from_scores
from tests import detector_files
from tests.detector_files import reference_scores, write_pickled_checkpoint, write_torchscript
from tests.reference import expected_metrics, json_rows, load_images, split_rows

SIZE = 64

VERSION = get_protocol("cross-generator").version


def _request(root: Path, artifact: Path, *, fmt: str = "torchscript", first: int = 0, last: int | None = None,
             **changes: object) -> ShardRequest:
    fields = dict(
        run_id=7, artifact_url=str(artifact), artifact_sha256=file_sha256(artifact), artifact_format=fmt,
        input_size=SIZE, dataset_root_url=str(root), manifest_url=str(root / "manifest.jsonl"),
        manifest_sha256=manifest_sha256(root / "manifest.jsonl"), protocol="cross-generator", protocol_version=get_protocol("cross-generator").version,
        config={"batch_size": 50}, split="test", first_row=first,
        last_row=len(split_rows(root)) if last is None else last, device_hint="cpu",
    )
    return ShardRequest(**{**fields, **changes})


def test_a_full_shard_matches_a_direct_computation(mini_root: Path, tmp_path: Path) -> None:
    artifact = write_torchscript(tmp_path / "d.pt", seed=2)
    progress: list[ShardProgress] = []
    outcome = run_shard(_request(mini_root, artifact), progress.append)
    assert outcome.status == "done", outcome.error
    rows = split_rows(mini_root)
    direct = reference_scores(load_images(mini_root, rows, SIZE), seed=2)
    np.testing.assert_allclose(outcome.scores, direct, atol=1e-5)
    assert np.array_equal(np.float32(outcome.scores), outcome.scores)  # float32 values, as the platform stores
    assert not hasattr(outcome, "metrics")  # the worker sends scores only; the platform computes every number
    assert [p.stage for p in progress][0] == "loading" and progress[-1].done == progress[-1].total == len(rows)
    outcome.check()


def test_a_shard_covers_exactly_its_row_range(mini_root: Path, tmp_path: Path) -> None:
    artifact = write_torchscript(tmp_path / "d.pt")
    outcome = run_shard(_request(mini_root, artifact, first=10, last=30), lambda _: None)
    with (mini_root / "manifest.jsonl").open() as handle:
        test_line_numbers = [i for i, line in enumerate(handle) if '"split":"test"' in line]
    assert outcome.row_ids == test_line_numbers[10:30]


def test_an_artifact_that_changed_since_upload_is_a_platform_fault(mini_root: Path, tmp_path: Path) -> None:
    artifact = write_torchscript(tmp_path / "d.pt")
    outcome = run_shard(_request(mini_root, artifact, artifact_sha256="0" * 64), lambda _: None)
    assert outcome.status == "failed" and outcome.error_kind == "platform" and "sha256" in outcome.error


def test_a_pickled_checkpoint_is_the_users_fault_and_never_loaded(mini_root: Path, tmp_path: Path) -> None:
    artifact = write_pickled_checkpoint(tmp_path / "ckpt.pt")
    outcome = run_shard(_request(mini_root, artifact), lambda _: None)
    assert outcome.status == "failed" and outcome.error_kind == "user" and "pickle" in outcome.error.lower()


def test_a_missing_image_is_a_platform_fault_that_names_it(mini_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mini"
    shutil.copytree(mini_root, copy)
    victim = split_rows(copy)[3]["path"]
    (copy / victim).unlink()
    outcome = run_shard(_request(copy, write_torchscript(tmp_path / "d.pt")), lambda _: None)
    assert outcome.status == "failed" and outcome.error_kind == "platform" and victim in outcome.error


def test_a_protocol_version_this_worker_does_not_run_is_refused(mini_root: Path, tmp_path: Path) -> None:
    outcome = run_shard(_request(mini_root, write_torchscript(tmp_path / "d.pt"), protocol_version=99), lambda _: None)
    assert outcome.status == "failed" and "v99" in outcome.error


def test_messages_refuse_other_versions_and_missing_fields() -> None:
    progress = ShardProgress(run_id=1, done=2, total=3, stage="scoring")
    assert ShardProgress.from_dict(progress.to_dict()) == progress
    with pytest.raises(MessageError, match="version"):
        ShardProgress.from_dict({**progress.to_dict(), "version": 0})
    with pytest.raises(MessageError, match="missing fields stage"):
        ShardProgress.from_dict({k: v for k, v in progress.to_dict().items() if k != "stage"})


def test_a_done_message_checks_its_numbers() -> None:
    base = dict(run_id=1, status="done", evaluator_version="x", artifact_sha256="a", manifest_sha256="m",
                protocol="cross-generator", protocol_version=VERSION)
    ShardDone(**base, row_ids=[1, 2, 3], scores=[-60.0, 1.5, 3e38]).check()  # logits, not probabilities
    for bad in (float("nan"), float("inf"), -float("inf"), 1e39, True, "0.5"):
        with pytest.raises(MessageError, match="finite logits within float32's range"):
            ShardDone(**base, row_ids=[1], scores=[bad]).check()
    with pytest.raises(MessageError, match="one value per row id and condition"):
        ShardDone(**base, row_ids=[1, 2], scores=[0.5]).check()
    ShardDone(**base, row_ids=[1, 2], scores=[0.1, 0.2, 0.3, 0.4], conditions=["jpeg-90", "jpeg-50"]).check()
    with pytest.raises(MessageError, match="one value per row id and condition"):
        ShardDone(**base, row_ids=[1, 2], scores=[0.1, 0.2, 0.3], conditions=["jpeg-90", "jpeg-50"]).check()


def test_a_message_of_the_previous_version_with_worker_metrics_is_refused() -> None:
    base = dict(run_id=1, status="done", evaluator_version="x", artifact_sha256="a", manifest_sha256="m",
                protocol="cross-generator", protocol_version=VERSION, row_ids=[1], scores=[0.2])
    current = ShardDone(**base).to_dict()
    assert "metrics" not in current and ShardDone.from_dict(current) == ShardDone(**base)
    with pytest.raises(MessageError, match="message version 4"):
        ShardDone.from_dict({**current, "version": 4, "metrics": {"mean": {"ap": 0.99}}})


def test_logits_from_minus_to_plus_60_give_scikit_learns_ap_and_roc_auc_where_probabilities_tie(
    mini_root: Path, tmp_path: Path,
) -> None:
    rows = split_rows(mini_root)
    scale, centre = detector_files.spread_logit_map(load_images(mini_root, rows, SIZE))
    artifact = detector_files.write_spread_logits(tmp_path / "wide.pt", scale=scale, centre=centre)
    outcome = run_shard(_request(mini_root, artifact), lambda _: None)
    assert outcome.status == "done", outcome.error
    logits = np.asarray(outcome.scores)
    assert logits.min() < -59 and logits.max() > 59

    def numbers(scores: np.ndarray, kind: ScoreKind) -> dict:
        return summary_from_scores(protocol="cross-generator", config={}, manifest_url=str(mini_root / "manifest.jsonl"),
                                   split="test", row_ids=outcome.row_ids, scores=scores, score_kind=kind,
                                   resamples=2).metrics

    exact = expected_metrics(rows, logits)  # scikit-learn on the exact logits
    stored = numbers(logits, ScoreKind.LOGIT)
    for subset, values in exact.items():
        for name in ("ap", "roc_auc", "acc_real", "acc_generated"):
            assert stored[subset][name] == pytest.approx(values[name], abs=1e-12), (subset, name)

    # The old storage: float32 probabilities, which round to exactly 1.0 above logit ~17 and tie those images.
    probabilities = (1 / (1 + np.exp(-logits))).astype(np.float32)
    assert np.count_nonzero(probabilities == 1.0) > 50
    old = numbers(probabilities, ScoreKind.PROBABILITY)
    ap_error = max(abs(old[s]["ap"] - exact[s]["ap"]) for s in exact)
    auc_error = max(abs(old[s]["roc_auc"] - exact[s]["roc_auc"]) for s in exact)
    assert ap_error > 1e-4 and auc_error > 1e-5, (ap_error, auc_error)
    # ... while the accuracies at probability 0.5 (logit 0) are the same either way.
    assert all(old[s]["acc_mean"] == stored[s]["acc_mean"] for s in exact)


def test_a_protocol_needing_a_capability_the_detector_lacks_is_not_applicable_and_an_analysis_samples(
        mini_root: Path, tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from evaluation.protocols import base
    from evaluation.protocols.base import sample_positions

    seen: list[int] = []

    def run(detector, data, config, progress):  # records which rows it was given
        seen.extend(r.row_id for r in data.rows)
        return get_protocol("cross-generator").run(detector, data, config, progress)

    analysis = replace(get_protocol("cross-generator"), name="test-weights", needs=frozenset({"outputs", "weights"}),
                       analysis=True, run=run, default_config={"batch_size": 8, "threshold": 0.0, "images": 10})
    monkeypatch.setitem(base._REGISTRY, analysis.name, analysis)
    onnx = detector_files.write_onnx(tmp_path / "d.onnx", seed=1, input_size=SIZE)
    done = run_shard(_request(mini_root, onnx, fmt="onnx", protocol="test-weights", protocol_version=analysis.version),
                     lambda p: None)
    assert done.status == "not_applicable" and "needs weights" in done.error and not done.row_ids
    assert ShardDone.from_dict(done.to_dict()).status == "not_applicable"
    done = run_shard(_request(mini_root, write_torchscript(tmp_path / "d.pt", seed=1), protocol="test-weights",
                              protocol_version=analysis.version), lambda p: None)
    total = len(split_rows(mini_root))
    test_lines = [i for i, r in enumerate(json_rows(mini_root)) if r["split"] == "test"]
    assert done.status == "done" and seen == [test_lines[i] for i in sample_positions(total, 10)]
    assert len(seen) == len(sample_positions(total, 10)) <= 10
