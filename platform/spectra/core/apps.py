from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "spectra.core"
    label = "core"

    def ready(self) -> None:
        from spectra.core.pagecache import watch_writes

        watch_writes()
