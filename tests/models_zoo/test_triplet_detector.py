"""The "triplet-kmeans" detector: the untrained entry, the logit against numpy, the seeded recipe on the mini
benchmark, and the TorchScript, ONNX and safetensors round trips an upload of it goes through."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from models_zoo.registry import create_model, train_model
from models_zoo.triplet import TripletDetector, batch_triplets, group_images, split_logits

SIZE = 32  # the mini benchmark's 64 px tiles, resized: a quarter of the work, the same code path
TRAINING = {"steps": 4, "per_class": 6}


@pytest.fixture(scope="module")
def trained(mini_root: Path) -> TripletDetector:
    return train_model("triplet-kmeans", mini_root, input_size=SIZE, seed=0, **TRAINING)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.rand(5, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


def test_the_untrained_entry_scores_every_image_one_half(batch: torch.Tensor) -> None:
    model = create_model("triplet-kmeans", input_size=SIZE)
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (5,) and torch.equal(torch.sigmoid(logits), torch.full((5,), 0.5))
    again = create_model("triplet-kmeans", input_size=SIZE).state_dict()
    assert all(torch.equal(value, again[key]) for key, value in model.state_dict().items())  # seeded build
    with pytest.raises(ValueError, match="at least 8 px"):
        create_model("triplet-kmeans", input_size=4)


def test_the_logit_is_the_difference_of_squared_distances_to_the_centres(batch: torch.Tensor) -> None:
    model = create_model("triplet-kmeans", input_size=SIZE)
    rng = np.random.default_rng(0)
    model.centre_real.copy_(torch.from_numpy(rng.normal(size=16)))
    model.centre_generated.copy_(torch.from_numpy(rng.normal(size=16)))
    with torch.no_grad():
        logits, embedding = model(batch).numpy(), model.features(batch).numpy().astype(np.float64)
    real, generated = model.centre_real.numpy().astype(np.float64), model.centre_generated.numpy().astype(np.float64)
    expected = ((embedding - real) ** 2).sum(axis=1) - ((embedding - generated) ** 2).sum(axis=1)
    assert np.allclose(logits, expected, rtol=1e-5, atol=1e-5) and np.any(expected != 0)


def test_all_triplets_of_a_batch_respect_the_groups() -> None:
    groups = np.array([0, 0, 1, 1, 1, 2])
    triples = batch_triplets(groups).numpy()
    expected = {(a, p, n) for a in range(6) for p in range(6) for n in range(6)
                if a != p and groups[a] == groups[p] and groups[n] != groups[a]}
    assert len(triples) == len(expected) and set(map(tuple, triples.tolist())) == expected


def test_the_loader_samples_at_most_per_class_images_of_every_source_group(mini_root: Path) -> None:
    images, groups, labels = group_images(mini_root, "train", input_size=SIZE, per_class=3, seed=1)
    assert images.shape == (18, 3, SIZE, SIZE) and np.array_equal(np.bincount(groups), [3] * 6)
    assert np.array_equal(labels, (groups > 0).astype(int))  # group 0 is "real"
    again = group_images(mini_root, "train", input_size=SIZE, per_class=3, seed=1)[0]
    assert torch.equal(images, again)


def test_the_recipe_is_seeded_finite_and_has_the_entrys_layout(trained: TripletDetector, mini_root: Path,
                                                                batch: torch.Tensor) -> None:
    untrained = create_model("triplet-kmeans", input_size=SIZE).state_dict()
    state = trained.state_dict()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in untrained.items()}
    assert not torch.equal(trained.centre_real, trained.centre_generated)
    again = train_model("triplet-kmeans", mini_root, input_size=SIZE, seed=0, **TRAINING).state_dict()
    assert all(torch.equal(value, again[key]) for key, value in state.items())
    with torch.no_grad():
        assert torch.isfinite(trained(batch)).all()
    from tests.reference import json_rows

    logits, labels = map(np.concatenate, zip(*split_logits(trained, mini_root, "val", input_size=SIZE), strict=True))
    expected = [row["label"] for row in json_rows(mini_root) if row["split"] == "val"]
    assert np.array_equal(labels, expected) and np.isfinite(logits).all()


def test_torchscript_round_trip_is_identical(trained: TripletDetector, batch: torch.Tensor) -> None:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(trained), buffer)
    buffer.seek(0)
    with torch.no_grad():
        assert torch.equal(torch.jit.load(buffer)(batch), trained(batch))


def test_onnx_export_agrees_with_torch(trained: TripletDetector, batch: torch.Tensor, tmp_path: Path) -> None:
    import onnxruntime

    path = tmp_path / "triplet.onnx"
    torch.onnx.export(trained, (batch[:1],), str(path), dynamo=False, opset_version=17, input_names=["images"],
                      output_names=["logits"], dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(None, {"images": batch.numpy()})
    with torch.no_grad():
        assert np.allclose(exported, trained(batch).numpy(), rtol=0, atol=1e-4)


def test_safetensors_round_trip_into_a_fresh_entry_is_identical(trained: TripletDetector, batch: torch.Tensor,
                                                                  tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    save_file(trained.state_dict(), str(tmp_path / "triplet.safetensors"))
    fresh = create_model("triplet-kmeans", input_size=SIZE)
    fresh.load_state_dict(load_file(str(tmp_path / "triplet.safetensors")), strict=True)
    with torch.no_grad():
        assert torch.equal(fresh(batch), trained(batch))
