from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "spectra.core"
    label = "core"
