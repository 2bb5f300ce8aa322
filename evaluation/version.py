"""The evaluator's version. Every stored Result records it; bump it whenever a number could change."""
from __future__ import annotations

EVALUATOR_VERSION = "0.4.0"  # 0.2: shards, metrics recomputed from scores; 0.3: scores are logits;
# 0.4: calibration metrics, the wild protocol's distortions
