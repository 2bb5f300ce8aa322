"""Recompute results from stored per-image scores: `python manage.py recompute_results [--submission N]`.

No detector runs: every number (and its interval) is recomputed by the current protocols' ``summarise`` from
the scores the evaluation workers stored, e.g. after a protocol gains a metric.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spectra.core.errors import ApplicationError
from spectra.submissions.models import Submission, SubmissionStatus
from spectra.submissions.services.results import submission_results_recompute


class Command(BaseCommand):
    help = "Recompute the results of finished submissions from their stored scores (no detector runs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--submission", type=int, help="only this submission (default: every finished one)")

    def handle(self, *args: Any, submission: int | None, **options: Any) -> None:
        finished = Submission.objects.filter(status=SubmissionStatus.DONE).order_by("pk")
        if submission is not None:
            finished = finished.filter(pk=submission)
            if not finished.exists():
                raise CommandError(f"There is no finished submission #{submission}.")
        total = 0
        for item in finished:
            try:
                groups = submission_results_recompute(submission=item)
            except ApplicationError as error:
                raise CommandError(error.message) from None
            total += groups
            self.stdout.write(f"  #{item.pk} {item.name}: {groups} (version, protocol) group(s) recomputed")
        self.stdout.write(self.style.SUCCESS(f"Recomputed {total} group(s) of {finished.count()} submission(s)."))
