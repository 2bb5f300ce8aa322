"""The platform worker's Celery app (queue ``platform``): it validates results and writes the database."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectra.settings")

app = Celery("spectra")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
