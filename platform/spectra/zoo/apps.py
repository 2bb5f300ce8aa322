from __future__ import annotations

from django.apps import AppConfig


class ZooConfig(AppConfig):
    name = "spectra.zoo"
    label = "zoo"
