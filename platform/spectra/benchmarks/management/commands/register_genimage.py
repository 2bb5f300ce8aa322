"""Scan a local GenImage copy and register it: `python manage.py register_genimage <root> [--out DIR] [--workers N]`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.datasets.genimage import (
    GENIMAGE_CITATION,
    GENIMAGE_DESCRIPTION,
    GENIMAGE_LICENCE,
    ScanSummary,
    scan_genimage,
)
from evaluation.errors import DatasetError
from spectra.benchmarks.management.publish import dataset_publish
from spectra.benchmarks.models import Dataset
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.core.errors import ApplicationError

SLUG = "genimage"


class Command(BaseCommand):
    help = (
        "Scan a GenImage copy (<root>/<Generator>/[<subfolder>/]{train,val}/{ai,nature}/<image>), write "
        "manifest.jsonl and known_bad.jsonl next to the images and register it as the GenImage benchmark. "
        "An interrupted scan resumes when the command is run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("root", type=Path, help="The GenImage folder holding one folder per generator.")
        parser.add_argument(
            "--out", type=Path, default=None,
            help="Where to write the manifest (default: <root>, which is required for registering it).",
        )
        parser.add_argument("--workers", type=int, default=2, help="Processes decoding images (default 2).")

    def handle(self, *args: Any, root: Path, out: Path | None, workers: int, **options: Any) -> None:
        root = root.resolve()
        out = (out or root).resolve()
        if out == root and root.is_dir() and not os.access(root, os.W_OK):
            raise CommandError(
                f"Cannot write manifest.jsonl into {root}: the folder is read-only. A dataset version is a folder "
                "of images with its manifest.jsonl beside them, so make the GenImage copy writable (or use a "
                "writable copy); --out DIR only scans, without registering."
            )
        self.stdout.write(f"Scanning {root} with {workers} worker(s); the manifest goes to {out}.")
        try:
            summary = scan_genimage(root, out, workers=workers, progress=options.get("verbosity", 1) > 0)
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        if out != root:
            self._summarise(summary)
            self.stdout.write(self.style.WARNING(
                f"Not registered: the manifest is in {out}, not beside the images in {root}. Copy "
                f"{summary.manifest_path} to {root / 'manifest.jsonl'} and run the command again without --out."
            ))
            return
        dataset = self._register(root)
        dataset_publish(dataset, self.stdout.write, archives=False)
        self._summarise(summary)
        self.stdout.write(self.style.SUCCESS(f"Registered GenImage ({dataset.variant}) from {dataset.root}."))

    def _register(self, root: Path) -> Dataset:
        benchmark = benchmark_upsert(slug=SLUG, name="GenImage", description=GENIMAGE_DESCRIPTION, is_synthetic=False)
        try:
            return dataset_register(
                benchmark=benchmark, root=root, variant="original", licence=GENIMAGE_LICENCE,
                citation=GENIMAGE_CITATION,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _summarise(self, summary: ScanSummary) -> None:
        resumed = f", resumed after {summary.resumed_from} images" if summary.resumed_from else ""
        self.stdout.write(f"Scanned in {summary.seconds:.0f} s{resumed}: {summary.n_rows} images in the manifest.")
        for (generator, split), labels in sorted(summary.counts.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            self.stdout.write(f"  {generator or '-':<28} {split:<5} real {labels[0]:>7}  generated {labels[1]:>7}")
        self.stdout.write(f"known bad files: {summary.n_known_bad} (listed in {summary.known_bad_path})")
        self.stdout.write(f"manifest sha256 {summary.manifest_sha256}")
