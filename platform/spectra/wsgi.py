"""WSGI entry point (gunicorn). Run with PYTHONPATH=platform:. so `spectra` and `evaluation` import."""
from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectra.settings")
application = get_wsgi_application()
