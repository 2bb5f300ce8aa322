"""ResNet-50 and Swin-T detectors: they build and score at 64 and 224 px, the recipes train on the real mini
benchmark (seeded, so the same seed gives the same weights), and the trained modules survive TorchScript, ONNX
and safetensors round trips. The full presets carry the paper's numbers."""
from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.perturbations import jpeg_reencode
from models_zoo.classifiers import ImageClassifierDetector, build
from models_zoo.recipes import (
    RECIPES,
    TrainImages,
    TrainProgress,
    learning_rate,
    main,
    save_weights,
    train_classifier,
    train_items,
    train_transform,
)
from models_zoo.registry import create_model, get_card, train_model

ARCHS = ("resnet50", "swin-t")
FEATURES = {"resnet50": 2048, "swin-t": 768}


def _few_steps(arch: str):
    """Three steps of batch 4 with every CPU-side augmentation switched on, so all of them run."""
    return replace(RECIPES[(arch, "mini")], max_steps=3, batch_size=4, randaugment=True, random_erasing=0.5,
                   random_resized_crop=True)


@pytest.fixture(scope="module", params=ARCHS)
def trained(request, mini_root: Path) -> tuple[str, ImageClassifierDetector, list[float]]:
    """One short run per architecture (shared by the round-trip tests), with its per-step losses."""
    losses: list[float] = []

    def log(progress: TrainProgress) -> None:
        losses.append(progress.loss)

    model = train_classifier(request.param, mini_root, config=_few_steps(request.param), seed=0, log=log)
    return request.param, model, losses


@pytest.mark.parametrize("arch", ARCHS)
def test_each_entry_builds_and_scores_at_64_and_224_px(arch: str) -> None:
    model = create_model(arch, input_size=64).eval()
    assert isinstance(model, ImageClassifierDetector) and get_card(arch).uploadable
    with torch.no_grad():
        small = torch.rand(2, 3, 64, 64)
        assert model(small).shape == (2,) and model.features(small).shape == (2, FEATURES[arch])
        assert model(torch.rand(1, 3, 224, 224)).shape == (1,)
    # The layout is the same for every build and size: torchvision's names under "net.", the head apart.
    again = build(arch, 224).state_dict()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in again.items()]
    assert {"head.weight", "head.bias"} <= again.keys() and again["head.weight"].shape == (1, FEATURES[arch])


def test_a_recipe_learns_and_the_same_seed_gives_the_same_weights(trained, mini_root: Path) -> None:
    arch, model, losses = trained
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    torch.manual_seed(0)  # train_classifier's initial weights are build() under the seed
    initial = build(arch, 64).state_dict()
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, initial[name])]
    assert "head.weight" in changed and len(changed) > len(initial) // 2
    again = train_classifier(arch, mini_root, config=_few_steps(arch), seed=0).state_dict()
    assert all(torch.equal(value, again[name]) for name, value in model.state_dict().items())


def test_the_registry_trainer_runs_the_mini_preset_with_overrides(mini_root: Path) -> None:
    model = train_model("resnet50", mini_root, input_size=64, seed=1, max_steps=1, batch_size=4, balance="loss")
    assert isinstance(model, ImageClassifierDetector) and not model.training
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(2, 3, 64, 64))).all()


def test_torchscript_round_trip_gives_identical_scores_and_keeps_features(trained) -> None:
    _, model, _ = trained
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    scripted = torch.jit.load(buffer)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(scripted(x), model(x)) and torch.equal(scripted.features(x), model.features(x))


def test_onnx_export_scores_like_torch(trained) -> None:
    import onnxruntime

    _, model, _ = trained
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.rand(2, 3, 64, 64),), buffer, dynamo=False, opset_version=17,
                      input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 64, 64)  # another batch size than the export's
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)


def test_safetensors_round_trip_into_a_fresh_build(trained, tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    arch, model, _ = trained
    save_weights(model, tmp_path / "weights.safetensors")
    with safe_open(str(tmp_path / "weights.safetensors"), "pt") as handle:
        assert handle.metadata() == {"spectra.architecture": arch, "spectra.input_size": "64"}
    fresh = create_model(arch, input_size=64)
    fresh.load_state_dict(load_file(str(tmp_path / "weights.safetensors")), strict=True)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model(x))


def test_jpeg_96_re_encodes_generated_training_images_like_pillow(mini_root: Path) -> None:
    config = replace(RECIPES[("resnet50", "mini")], jpeg_qf=96, hflip=0.0)
    items = train_items(mini_root, config)
    generated = next(i for i, item in enumerate(items) if item[1] == 1)
    real = next(i for i, item in enumerate(items) if item[1] == 0)
    assert items[generated][3] and not items[real][3]  # real images are left alone (as the reference code)
    with Image.open(mini_root / items[generated][0]) as image:
        original = image.convert("RGB")
    by_pillow = io.BytesIO()
    original.save(by_pillow, "JPEG", quality=96)
    expected = np.array(Image.open(by_pillow).convert("RGB"))  # a writable copy for torch
    ours = np.asarray(jpeg_reencode(original, 96))
    assert np.array_equal(ours, expected) and not np.array_equal(ours, np.asarray(original))
    tensor, label = TrainImages(mini_root, items, train_transform(config), 96)[generated]
    assert label == 1.0 and torch.equal(tensor, torch.from_numpy(expected).permute(2, 0, 1).float() / 255)


def test_the_full_presets_carry_the_papers_numbers() -> None:
    resnet, swin = RECIPES[("resnet50", "full")], RECIPES[("swin-t", "full")]
    assert (resnet.batch_size, resnet.lr, resnet.epochs, resnet.optimiser) == (128, 0.05, 200, "sgd")
    assert resnet.cosine and resnet.amp and resnet.channels_last and resnet.num_workers == 8
    assert (resnet.random_erasing, resnet.randaugment, resnet.input_size, resnet.jpeg_qf) == (0.6, True, 224, None)
    assert (swin.batch_size, swin.optimiser, swin.weight_decay, swin.epochs, swin.warmup_epochs) == (
        128, "adamw", 0.05, 300, 20)
    assert swin.lr == pytest.approx(5e-4 * 128 / 512) and swin.cosine and swin.amp and swin.grad_clip == 5.0
    for arch in ARCHS:
        mini = RECIPES[(arch, "mini")]
        assert (mini.input_size, mini.amp, mini.num_workers) == (64, False, 0)


def test_the_schedule_warms_up_then_decays_to_the_minimum() -> None:
    config = RECIPES[("resnet50", "full")]
    rates = [learning_rate(step, 100, 10, config) for step in range(100)]
    assert rates[0] == config.warmup_lr and rates[10] == pytest.approx(config.lr)
    assert rates[-1] == pytest.approx(config.min_lr) and all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_the_command_writes_uploadable_weights(mini_root: Path, tmp_path: Path, capsys) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "swin.safetensors"
    main(["--arch", "swin-t", "--recipe", "mini", "--root", str(mini_root), "--out", str(out), "--max-steps", "1",
          "--batch-size", "4", "--input-size", "64"])
    assert "step 1/1" in capsys.readouterr().out
    create_model("swin-t", input_size=64).load_state_dict(load_file(str(out)), strict=True)
