"""Zoo pages: mirror the models_zoo registry's cards without importing torch (issue 5)."""
from __future__ import annotations

from django.apps import AppConfig


class ZooConfig(AppConfig):
    name = "spectra.zoo"
    label = "zoo"
