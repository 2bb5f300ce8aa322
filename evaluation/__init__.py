"""Spectra's evaluation library: datasets, detectors, protocols and metrics.

Pure Python + numpy + torch. It imports nothing from Django, DRF or Celery (``tests/test_layout.py``
enforces it), so it runs inside the evaluation worker, which holds no database credentials, and from
the command line. Importing this package does not import torch: the web process reads
``evaluation.detectors.formats`` and ``evaluation.metrics`` and must stay torch-free.
"""
from __future__ import annotations

from evaluation.version import EVALUATOR_VERSION as EVALUATOR_VERSION
