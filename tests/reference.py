"""Independent computations the tests compare the platform's numbers with (PIL + torch + scikit-learn)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score


def json_rows(root: Path) -> list[dict]:
    with (root / "manifest.jsonl").open(encoding="utf-8") as handle:
        return list(map(json.loads, handle))


def split_rows(root: Path) -> list[dict]:
    return [row for row in json_rows(root) if row["split"] == "test"]


def load_images(root: Path, rows: list[dict], size: int) -> torch.Tensor:
    images = []
    for row in rows:
        with Image.open(root / row["path"]) as image:
            rgb = image.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(images)


def expected_metrics(rows: list[dict], scores: np.ndarray) -> dict[str, dict[str, float]]:
    """Per generator: its generated images plus the shared real pool; then the mean over generators. ``scores``
    are logits (generated above 0)."""
    labels = np.array([r["label"] for r in rows])
    generators = np.array([r["generator"] or "" for r in rows])
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(generators[labels == 1])):
        mask = (generators == name) | ((labels == 0) & (generators == ""))
        y, s = labels[mask], scores[mask]
        acc_real = float(np.mean(s[y == 0] <= 0.0))
        acc_generated = float(np.mean(s[y == 1] > 0.0))
        out[name] = {
            "acc_real": acc_real, "acc_generated": acc_generated, "acc_mean": (acc_real + acc_generated) / 2,
            "ap": float(average_precision_score(y, s)), "roc_auc": float(roc_auc_score(y, s)),
        }
    out["mean"] = {k: float(np.mean([m[k] for m in out.values()])) for k in next(iter(out.values()))}
    return out


def scores_with_accuracy(rows: list[dict], accuracy: float, offset: float = 0.0) -> list[float]:
    """Logits that classify exactly ``accuracy`` of every (label, generator) group right at logit 0 (the logits
    of probabilities 0.9 and 0.1).

    ``offset`` (below 0.4, on the probability scale) moves the scores without changing a decision, so AP and
    ROC-AUC differ.
    """
    seen: dict[tuple[int, str], int] = {}
    sizes: dict[tuple[int, str], int] = {}
    for row in rows:
        key = (row["label"], row["generator"] or "")
        sizes[key] = sizes.get(key, 0) + 1
    scores = []
    for row in rows:
        key = (row["label"], row["generator"] or "")
        k = seen[key] = seen.get(key, 0) + 1
        right = k <= round(accuracy * sizes[key])
        says_generated = right == (row["label"] == 1)
        p = 0.9 - offset * (k % 2) if says_generated else 0.1 + offset * (k % 3) / 2
        scores.append(float(np.log(p) - np.log1p(-p)))
    return scores


def small_version(root: Path, target: Path, per_class: int) -> Path:
    """A dataset version holding the first ``per_class`` real and generated images of each split of ``root``
    (its manifest lines copied as they are, its images linked), for recipes that read a whole split."""
    counts: dict[tuple[str, int], int] = {}
    lines = []
    for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        key = (row["split"], row["label"])
        if counts.get(key, 0) < per_class:
            counts[key] = counts.get(key, 0) + 1
            lines.append(line)
            (target / row["path"]).parent.mkdir(parents=True, exist_ok=True)
            (target / row["path"]).symlink_to(root / row["path"])
    (target / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
