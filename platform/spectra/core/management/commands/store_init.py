"""Prepare the object store on the stack's first start: `python manage.py store_init` (compose's web command).

Makes the bucket when it is missing and does nothing after that; under SPECTRA_STORAGE=local there is no store.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from spectra.core import objectstore


class Command(BaseCommand):
    help = "Make the object store's bucket if it does not exist yet (SPECTRA_STORAGE=s3)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not objectstore.is_remote():
            self.stdout.write("SPECTRA_STORAGE=local: files live under SPECTRA_MEDIA_ROOT and SPECTRA_DATA_ROOT.")
            return
        made = objectstore.bucket_ensure()
        where = f"{objectstore.bucket()} at {settings.SPECTRA_S3['endpoint_url']}"
        self.stdout.write(f"Made the bucket {where}." if made else f"The bucket {where} is there.")
