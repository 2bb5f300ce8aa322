"""The adversarial analysis end to end: a TorchScript upload that asks for it is attacked by a real evaluation
worker through the sandbox, and its FGSM accuracies equal the closed form of FGSM on that (linear) detector; the
page, its figure downloads and the leaderboard tabs show the numbers. An ONNX upload says "not applicable"."""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from django.urls import reverse
from torch import nn

from evaluation.indicators import INDICATORS, feature_indicators
from evaluation.protocols.adversarial import DEFAULT_CONFIG, ROBUST_METRIC
from evaluation.protocols.base import sample_positions
from spectra.submissions.selectors import image_scores_get
from tests.detector_files import TinyDetector, reference_scores, write_onnx, write_torchscript
from tests.reference import expected_metrics, load_images, split_rows

# `analyses`: CI's second pass (the embedded broker and database) leaves these out; the first pass runs them.
pytestmark = [pytest.mark.workers, pytest.mark.analyses, pytest.mark.django_db(transaction=True)]
SIZE = 64


class LinearDetector(nn.Module):
    """z = <w, x − 0.5>: 2 × the brightness plus 6 × a ±1 checkerboard (per pixel, over the pixel count). Every
    weight keeps the checkerboard's sign, so FGSM moves the logit by 6·ε before clipping: the sweep's ε values fool
    different numbers of images."""

    def __init__(self) -> None:
        super().__init__()
        pattern = (torch.arange(SIZE).reshape(-1, 1) + torch.arange(SIZE)) % 2 * 2 - 1.0
        weights = (2 + 6 * pattern).expand(3, -1, -1).reshape(1, 3, SIZE, SIZE) / (3 * SIZE * SIZE)
        self.register_buffer("w", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - 0.5) * self.w).flatten(1).sum(1)


def _closed_form_fgsm_accuracy(module: LinearDetector, images: torch.Tensor, rows: list[dict], eps: float) -> float:
    """The cross-generator mean accuracy of FGSM's images: x + ε·sign((σ(z) − y)·w), clipped to [0, 1]."""
    y = torch.tensor([r["label"] for r in rows], dtype=torch.float32)
    with torch.no_grad():
        p = torch.sigmoid(module(images))
        adversarial = (images + eps * torch.sign((p - y).reshape(-1, 1, 1, 1) * module.w)).clamp(0, 1)
        logits = module(adversarial).double().numpy()
    return expected_metrics(rows, logits)["mean"]["acc_mean"]


def _upload(client, path: Path, fmt: str, analyses: list[str]) -> int:
    with path.open("rb") as handle:
        response = client.post(reverse("submit"), {"name": f"{fmt} analysed", "benchmark": "mini", "format": fmt,
                                                   "input_size": SIZE, "file": handle, "analyses": analyses})
    assert response.status_code == 302, response.content.decode()[:3000]
    return int(response.url.rstrip("/").split("/")[-1])


def test_the_adversarial_analysis_runs_in_the_sandbox_and_fgsm_equals_its_closed_form(
        alice_client, mini_dataset, mini_root, workers, tmp_path, settings) -> None:
    settings.SPECTRA_PROTOCOLS = ["cross-generator"]  # the analysis is what is under test here
    # C&W and BIM are compared with foolbox in tests/evaluation/test_adversarial.py; three attacks keep this short.
    settings.SPECTRA_ANALYSIS_CONFIG = {"adversarial": {"attacks": ["fgsm", "pgd", "deepfool"], "images": 40}}
    module = LinearDetector().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module), str(tmp_path / "linear.pt"))
    submission = workers.wait_for(_upload(alice_client, tmp_path / "linear.pt", "torchscript", ["adversarial"]))
    assert submission.status == "done", submission.error
    run = submission.runs.get(protocol="adversarial")
    test_rows = split_rows(mini_root)
    sample = [test_rows[i] for i in sample_positions(len(test_rows), 40)]
    assert run.total == len(sample) == run.scores.count and run.isolation.get("sandbox")
    images = load_images(mini_root, sample, SIZE)
    results = {(r.subset, r.condition): r for r in submission.results.filter(protocol="adversarial")}
    for eps in DEFAULT_CONFIG["epsilons"]:
        shown = results[("mean", f"fgsm@{eps:g}")].metrics["acc_mean"]
        assert shown == pytest.approx(_closed_form_fgsm_accuracy(module, images, sample, eps), abs=1e-9), eps
    levels = [results[("mean", f"fgsm@{eps:g}")].metrics["acc_mean"] for eps in DEFAULT_CONFIG["epsilons"]]
    assert len(set(levels)) >= 2, levels  # the sweep is not degenerate: ε changes what is fooled
    robust = results[("mean", "robust")].metrics[ROBUST_METRIC]
    assert robust <= results[("mean", "fgsm@0.03")].metrics["acc_mean"]
    assert results[("mean", "robust")].intervals[ROBUST_METRIC]  # a bootstrap interval from the stored scores
    defense = [r for key, r in results.items() if key[1].startswith("defense:")]
    assert defense and all(0 <= r.metrics["auc"] <= 1 and r.metrics["roc"]["fpr"][0] == 0 for r in defense)

    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    for element in ('id="adversarial-epsilon"', 'id="adversarial-roc"', 'id="spectral-defense"', 'id="robust-accuracy"'):
        assert element in page
    figure = alice_client.get(reverse("submission-figure", args=[submission.pk, "adversarial-epsilon", "json"])).json()
    fgsm = next(t for t in figure["data"] if t["name"] == "FGSM")
    assert fgsm["x"][0] == 0 and fgsm["y"][1:] == [results[("mean", f"fgsm@{e:g}")].metrics["acc_mean"]
                                                   for e in sorted(DEFAULT_CONFIG["epsilons"])]
    table = alice_client.get(reverse("submission-figure", args=[submission.pk, "adversarial-roc", "csv"]))
    assert table["Content-Type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(table.content.decode()))) == ["trace", "x", "y", "z"]
    assert alice_client.get(f"/submissions/{submission.pk}/figures/nothing.json").status_code == 404

    board = alice_client.get(reverse("leaderboard-analysis", args=["mini", "robust-accuracy"])).content.decode()
    assert f'data-submission="{submission.pk}"' in board and f"{robust:.4f}" in board
    assert alice_client.get(reverse("leaderboard-analysis", args=["mini", "sharpness-of-x"])).status_code == 404


def test_an_onnx_upload_without_a_zoo_surrogate_is_told_the_analysis_does_not_apply_and_is_done(
        alice_client, mini_dataset, workers, tmp_path, settings) -> None:
    settings.SPECTRA_PROTOCOLS = ["cross-generator"]
    path = write_onnx(tmp_path / "d.onnx", seed=2, input_size=SIZE)
    submission = workers.wait_for(_upload(alice_client, path, "onnx", ["adversarial", "landscape", "indicators"]))
    assert submission.status == "done", submission.error
    run = submission.runs.get(protocol="adversarial")
    assert "gives no gradients" in run.not_applicable and "surrogate" in run.not_applicable and not run.error
    assert "needs weights" in submission.runs.get(protocol="landscape").not_applicable
    assert "needs features" in submission.runs.get(protocol="indicators").not_applicable
    assert not submission.results.filter(protocol__in=["adversarial", "landscape", "indicators"]).exists()
    assert submission.results.filter(protocol="cross-generator").exists()
    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert page.count("not applicable.") == 3 and "gives no gradients" in page and "needs weights" in page


def _zoo_surrogate(owner, benchmark, tmp_path: Path) -> nn.Module:
    """A finished zoo row of ResNet-50 (random weights, 64 px) whose safetensors the platform links as surrogate."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone
    from safetensors.torch import save_file

    from models_zoo.registry import create_model
    from spectra.submissions.models import Submission
    from spectra.submissions.services.artifacts import artifact_store

    model = create_model("resnet50", input_size=SIZE).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "surrogate.safetensors"))
    upload = SimpleUploadedFile("surrogate.safetensors", (tmp_path / "surrogate.safetensors").read_bytes())
    artifact = artifact_store(owner=owner, upload=upload, declared_format="safetensors", input_size=SIZE,
                              architecture="resnet50")
    Submission.objects.create(name="zoo resnet50", owner=owner, artifact=artifact, benchmark=benchmark,
                              dataset=benchmark.datasets.get(is_current=True), zoo_entry="resnet50",
                              status="done", finished=timezone.now())
    return model


def test_an_onnx_upload_is_attacked_through_the_zoo_surrogate_and_labelled_transfer(
        alice, alice_client, mini_dataset, mini_root, workers, tmp_path, settings) -> None:
    settings.SPECTRA_PROTOCOLS = ["cross-generator"]
    settings.SPECTRA_ANALYSIS_CONFIG = {"adversarial": {"attacks": ["fgsm"], "images": 16}}
    surrogate = _zoo_surrogate(alice, mini_dataset.benchmark, tmp_path)
    path = write_onnx(tmp_path / "target.onnx", seed=4, input_size=SIZE)
    submission = workers.wait_for(_upload(alice_client, path, "onnx", ["adversarial"]))
    assert submission.status == "done", submission.error
    run = submission.runs.get(protocol="adversarial")
    assert not run.not_applicable and run.analysis["mode"] == "transfer" and run.total == 16
    assert run.analysis["surrogate"]["architecture"] == "resnet50" and run.config["surrogate_sha256"]
    # FGSM made on the surrogate in this process, scored by the target's own eager twin.
    test_rows = split_rows(mini_root)
    sample = [test_rows[i] for i in sample_positions(len(test_rows), 16)]
    images = load_images(mini_root, sample, SIZE).requires_grad_(True)
    labels = torch.tensor([r["label"] for r in sample], dtype=torch.float32)
    loss = nn.functional.binary_cross_entropy_with_logits(surrogate(images).reshape(-1), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, images)
    row_ids, stored = image_scores_get(scores=run.scores)
    stored = stored.reshape(len(run.scores.conditions), -1)
    for eps in DEFAULT_CONFIG["epsilons"]:
        adversarial = (images.detach() + eps * gradient.sign()).clamp(0, 1)
        expected = reference_scores(adversarial, seed=4)
        shown = stored[run.scores.conditions.index(f"fgsm@{eps:g}")]
        assert np.median(np.abs(shown - expected)) < 1e-4 and np.abs(shown - expected).max() < 5e-2, eps
    robust = submission.results.get(protocol="adversarial", subset="mean", condition="robust")
    assert robust.metrics["transfer"] == 1.0 and robust.config["mode"] == "transfer"
    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert "transfer attacks" in page and "resnet50" in page
    board = alice_client.get(reverse("leaderboard-analysis", args=["mini", "robust-accuracy"])).content.decode()
    assert "transfer" in board


def test_an_unknown_analysis_is_refused_with_the_valid_names(alice_client, mini_dataset, tmp_path) -> None:
    path = write_onnx(tmp_path / "d.onnx", seed=2, input_size=SIZE)
    with path.open("rb") as handle:
        response = alice_client.post(reverse("api:submission-create"), {
            "benchmark": "mini", "format": "onnx", "input_size": SIZE, "file": handle, "analyses": ["hessian"]})
    assert response.status_code == 400
    assert "adversarial" in response.content.decode()


def test_the_landscape_and_indicators_of_a_torchscript_upload_equal_independent_computations(
        alice_client, mini_dataset, mini_root, workers, tmp_path, settings) -> None:
    from scipy.sparse.linalg import LinearOperator, eigsh

    settings.SPECTRA_PROTOCOLS = ["cross-generator"]
    settings.SPECTRA_ANALYSIS_CONFIG = {"landscape": {"images": 16, "grid": 5, "slice_points": 9, "slq_steps": 8,
                                                      "slq_repeats": 1}, "indicators": {"images": 64}}
    module = TinyDetector(seed=6).eval()
    path = write_torchscript(tmp_path / "tiny.pt", seed=6)
    submission = workers.wait_for(_upload(alice_client, path, "torchscript", ["landscape", "indicators"]))
    assert submission.status == "done", submission.error
    rows = {r.condition: r for r in submission.results.filter(protocol="landscape", subset="mean")}
    shown = rows["sharpness"].metrics["top_eigenvalue"]
    # Independently: torch.autograd.functional.hvp of the mean BCE on the same sample, and ARPACK on it.
    test_rows = split_rows(mini_root)
    sample = [test_rows[i] for i in sample_positions(len(test_rows), 16)]
    images, labels = load_images(mini_root, sample, SIZE), torch.tensor([r["label"] for r in sample]).float()
    params = [p for n, p in module.named_parameters() if "weight" in n or "bias" in n]
    shapes = [p.shape for p in params]

    def loss(*flat_params: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        names = [n for n, _ in module.named_parameters() if "weight" in n or "bias" in n]
        z = functional_call(module, dict(zip(names, flat_params, strict=True)), (images,))
        return nn.functional.binary_cross_entropy_with_logits(z, labels)

    def matvec(v: np.ndarray) -> np.ndarray:
        pieces = torch.split(torch.from_numpy(np.ravel(v)).float(), [int(np.prod(s)) for s in shapes])
        _, product = torch.autograd.functional.hvp(
            loss, tuple(p.detach() for p in params), tuple(x.reshape(s) for x, s in zip(pieces, shapes, strict=True)))
        return torch.cat([x.reshape(-1) for x in product]).double().numpy()

    size = sum(int(np.prod(s)) for s in shapes)
    expected = eigsh(LinearOperator((size, size), matvec=matvec, dtype=np.float64), k=1, which="LA",
                     v0=np.ones(size), return_eigenvectors=False)[0]
    assert shown == pytest.approx(expected, rel=1e-3)
    surface = rows["surface"].metrics
    assert len(surface["loss"]) == 25 and surface["density"]["density"]
    page = alice_client.get(reverse("submission-detail", args=[submission.pk])).content.decode()
    assert 'id="landscape-surface"' in page and 'id="sharpness"' in page
    figure = alice_client.get(reverse("submission-figure", args=[submission.pk, "landscape-surface", "json"])).json()
    assert figure["data"][0]["type"] == "surface" and len(figure["data"][0]["z"]) == 5
    board = alice_client.get(reverse("leaderboard-analysis", args=["mini", "sharpness"])).content.decode()
    assert f'data-submission="{submission.pk}"' in board
    # The indicators: the module's own features of its sample, clustered here.
    sample = [test_rows[i] for i in sample_positions(len(test_rows), 64)]
    with torch.no_grad():
        features = module.features(load_images(mini_root, sample, SIZE)).numpy()
    expected = feature_indicators(features, [r["label"] for r in sample],
                                  [r["generator"] if r["label"] else "real" for r in sample])
    shown = submission.results.get(protocol="indicators", condition="indicators").metrics
    for name in INDICATORS:
        assert shown[name] == pytest.approx(expected[name], abs=1e-4), name
    assert 'id="indicator-values"' in page
    board = alice_client.get(reverse("leaderboard-analysis", args=["mini", "indicators"])).content.decode()
    assert f'data-submission="{submission.pk}"' in board
