from __future__ import annotations

from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "spectra.leaderboards"
    label = "leaderboards"
