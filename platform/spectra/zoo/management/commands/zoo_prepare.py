"""Prepare the zoo in the background of a running site: `python manage.py zoo_prepare [--benchmark mini]`.

`make run` (runstack) starts this once the site answers, at low CPU priority. It records every baseline row it
is going to train first (so the home page can say "preparing the zoo: 3 of 14" from the start), then runs the
zoo's experiments and trains and submits the baseline rows (zoo_baselines). The rows' shards wait on queue
``eval-zoo``, behind every person's upload. Re-running it skips what is done.
"""
from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.core.errors import ApplicationError
from spectra.zoo.services import zoo_preparation_plan

# Training steps of each small CNN of the indicator study and of the trajectory landscape (models_zoo).
STUDY_STEPS = 300


class Command(BaseCommand):
    help = "Run the zoo's experiments, then train and submit its baseline rows, recording progress for the site."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")

    def handle(self, *args: Any, benchmark: str, **options: Any) -> None:
        try:
            ranked = dataset_current(benchmark=benchmark_get(slug=benchmark))
        except ApplicationError as error:
            raise CommandError(f"{error.message} Build it first: python manage.py build_mini_benchmark") from None
        planned = zoo_preparation_plan(dataset=ranked)
        self.stdout.write(f"Preparing the zoo on {ranked}: {len(planned)} baseline rows.")
        try:
            call_command("zoo_experiments", benchmark=benchmark, indicator_steps=STUDY_STEPS,
                         trajectory_steps=STUDY_STEPS, stdout=self.stdout, stderr=self.stderr)
        except CommandError as error:  # the rows do not depend on the experiments
            self.stderr.write(f"The zoo's experiments failed: {error}")
        call_command("zoo_baselines", benchmark=benchmark, stdout=self.stdout, stderr=self.stderr)
