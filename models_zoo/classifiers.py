"""ResNet-50 and Swin-T detectors of "Fake or JPEG? Revealing Common Biases in Generated Image Detection
Datasets" (Unbiased GenImage, seeds.md §1): torchvision's architectures, trained from scratch, with one logit.

``ImageClassifierDetector`` takes N×3×S×S RGB floats in [0, 1], normalises them inside with ImageNet's mean and
std (so an upload is scored on the platform's plain [0, 1] tensors), and returns N logits of "generated". The
torchvision classifier's head is kept apart (``head``) and replaced by an identity inside the network, so the
network's own forward returns the pooled penultimate features: ``features`` is then exactly torchvision's
forward without its last linear layer, and both methods script with TorchScript. The training recipes are in
``models_zoo.recipes``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import resnet50, swin_t

from models_zoo.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"resnet50": resnet50, "swin-t": swin_t}
HEADS = {"resnet50": "fc", "swin-t": "head"}  # the name of torchvision's final linear layer per architecture


class ImageClassifierDetector(nn.Module):
    """A torchvision classifier with a single "generated" logit; any square input size (Swin pads its windows).

    State dict: ``net.*`` (torchvision's tensor names, minus the head) and ``head.weight`` / ``head.bias``.
    The mean/std buffers are not persistent: they are constants, so an upload never has to carry them.
    """

    def __init__(self, arch: str, input_size: int = 224) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; use {', '.join(ARCHITECTURES)}")
        net = ARCHITECTURES[arch](weights=None, num_classes=1)
        # Move the final linear layer out, so net(x) is the pooled features and the head is applied once.
        self.head: nn.Linear = getattr(net, HEADS[arch])
        setattr(net, HEADS[arch], nn.Identity())
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.arch = arch
        self.input_size = input_size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features: N×2048 (ResNet-50) or N×768 (Swin-T)."""
        return self.net((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


def build(arch: str, input_size: int) -> ImageClassifierDetector:
    """The untrained architecture. Initialisation draws from torch's global RNG, so seed it for equal weights."""
    return ImageClassifierDetector(arch, input_size)


@register_model("resnet50")
def build_resnet50(input_size: int = 224) -> ImageClassifierDetector:
    return build("resnet50", input_size)


@register_model("swin-t")
def build_swin_t(input_size: int = 224) -> ImageClassifierDetector:
    return build("swin-t", input_size)
