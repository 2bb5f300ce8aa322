"""Spectra's web layer: one Django project package with its apps by domain."""
from __future__ import annotations

from spectra.celery import app as celery_app

__all__ = ["celery_app"]
