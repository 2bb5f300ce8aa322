"""Attribution: a multi-class detector's binary score and its attribution metrics against scikit-learn and scipy,
and a real multi-class TorchScript file through the runner and the summary."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix
from torch import nn

from evaluation.attribution import CONFUSION, REAL_CLASS, attribution_metrics, declared_classes
from evaluation.detectors.loading import select_logit
from evaluation.metrics import ScoreKind
from evaluation.runner import run_shard
from evaluation.sandbox.scorer import ScorerCache
from evaluation.summary import summary_from_scores
from tests.evaluation.conftest import needs_sandbox
from tests.evaluation.test_runner import SIZE, _request
from tests.reference import json_rows, load_images, split_rows


def test_the_binary_score_of_class_logits_is_the_log_odds_of_any_generator() -> None:
    raw = np.random.default_rng(0).normal(0, 4, (50, 6))
    p = softmax(raw, axis=1)
    expected = np.log(p[:, 1:].sum(axis=1)) - np.log(p[:, 0])
    assert np.allclose(select_logit(raw, 50), expected, atol=1e-9)
    assert torch.allclose(select_logit(torch.from_numpy(raw), 50), torch.from_numpy(expected), atol=1e-9)


def test_attribution_metrics_equal_scikit_learns() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(40, int), np.ones(90, int)]
    generators = [None] * 40 + ["b"] * 30 + ["a"] * 30 + ["c"] * 30
    classes = declared_classes(labels, generators)
    assert classes == [REAL_CLASS, "a", "b", "c"]
    truth = np.array([0] * 40 + [2] * 30 + [1] * 30 + [3] * 30)
    logits = rng.normal(0, 1, (4, 130)) + 2.0 * np.eye(4)[truth].T  # mostly right, sometimes not
    out = attribution_metrics(labels, logits, generators)
    predicted = logits.argmax(axis=0)
    assert out["mean/attribution"]["attribution_acc"] == pytest.approx(accuracy_score(truth, predicted))
    assert out["mean/attribution"]["attribution_balanced_acc"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    shares = confusion_matrix(truth, predicted, normalize="true")
    for k, name in enumerate(classes):
        assert [out[f"{name}/{CONFUSION}"][f"to_{other}"] for other in classes] == pytest.approx(list(shares[k]))
    wrong = attribution_metrics(labels, logits[:3], generators)
    assert wrong == {"mean/attribution": {"attribution_acc": None, "attribution_balanced_acc": None,
                                          "classes_returned": 3.0, "classes_declared": 4.0}}


class ClassDetector(nn.Module):
    """Six logits [real, blend, gan, spectral, upsample, vae] from the image's mean colour and contrast."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.head = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        return self.head(stats * 10)


def _class_file(folder: Path) -> tuple[ClassDetector, Path]:
    module = ClassDetector().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(folder / "classes.pt"))
    return module, folder / "classes.pt"


@needs_sandbox
def test_the_sandboxed_scorer_returns_the_class_logits_as_they_are(scorers: ScorerCache, mini_root: Path,
                                                                   tmp_path: Path) -> None:
    module, path = _class_file(tmp_path)
    request = _request(mini_root, path, first=0, last=64)
    in_process = run_shard(request, lambda progress: None)
    sandboxed = run_shard(request, lambda progress: None, source=scorers)
    assert sandboxed.status == "done", sandboxed.error
    assert sandboxed.isolation.get("sandbox") and sandboxed.conditions == in_process.conditions
    assert np.allclose(sandboxed.scores, in_process.scores, atol=1e-6)


def test_a_multi_class_torchscript_file_is_scored_and_attributed_like_a_direct_computation(
        mini_root: Path, tmp_path: Path) -> None:
    module, path = _class_file(tmp_path)
    rows = split_rows(mini_root)[::8]
    outcome = run_shard(_request(mini_root, path, first=0, last=len(split_rows(mini_root))), lambda progress: None)
    assert outcome.status == "done", outcome.error
    assert outcome.conditions == ["", *(f"class-{c}" for c in range(6))]
    scores = np.asarray(outcome.scores).reshape(7, -1)
    line = {r["path"]: i for i, r in enumerate(json_rows(mini_root))}
    keep = [outcome.row_ids.index(line[r["path"]]) for r in rows]
    with torch.no_grad():
        direct = module(load_images(mini_root, rows, SIZE)).double().numpy()
    assert np.abs(scores[1:, keep].T - direct).max() < 1e-5
    summary = summary_from_scores(protocol="cross-generator", config={}, manifest_url=str(mini_root / "manifest.jsonl"),
                                  split="test", row_ids=outcome.row_ids, scores=scores, score_kind=ScoreKind.LOGIT,
                                  resamples=50)
    labels = np.array([r["label"] for r in split_rows(mini_root)])
    generators = [r["generator"] for r in split_rows(mini_root)]
    classes = declared_classes(labels, generators)
    truth = np.array([0 if y == 0 else classes.index(g) for y, g in zip(labels, generators, strict=True)])
    assert summary.metrics["mean/attribution"]["attribution_acc"] == pytest.approx(
        accuracy_score(truth, scores[1:].argmax(axis=0)))
    assert summary.intervals["mean/attribution"]["attribution_acc"] is not None
    assert summary.metrics["mean"]["roc_auc"] is not None  # the binary numbers from the log-odds of any generator
