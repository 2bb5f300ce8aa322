"""The SQL queries of each leaderboard, benchmark and submission-list page and read API endpoint do not grow with
the number of rows: counted on the load test's population (perf/population.py) with 20 and with 3,000 Result
rows, i.e. one finished submission per benchmark with one generator and the ranked protocol, against four per
benchmark (and a running one) with 5 and 8 generators and all three protocols, on more users."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from perf.population import LOAD_PLAN, BenchmarkPlan, Plan, Population, populate, population_urls
from spectra.submissions.models import Result, Submission, SubmissionStatus

pytestmark = pytest.mark.django_db  # without a marked test, pytest-django makes no test database for the fixture

# The same benchmarks and versions as the load test's, with one generator each and the ranked protocol only:
# one finished submission per benchmark holds exactly 20 Result rows (12 + 8: per version, the mean, the
# generator and the reliability bins of the generator and of all images).
SMALL_PLAN = Plan(benchmarks=tuple(BenchmarkPlan(b.slug, b.generators[:1], b.variants, b.shared_real, b.superseded)
                                   for b in LOAD_PLAN.benchmarks), users=2, protocols=("cross-generator",))
SIZES = {20: SMALL_PLAN, 3000: LOAD_PLAN}  # 3,000: a few hundred rows per entry (the wild protocol's)
SLUGS = [b.slug for b in LOAD_PLAN.benchmarks]
URL_NAMES = ["leaderboard page mini-load", "leaderboard page genimage-load", "benchmark page mini-load",
             "my submissions page", "API benchmark list", "API leaderboard mini-load", "API leaderboard genimage-load",
             "API submission results", "API submission"]


def _count_queries(population: Population) -> dict[str, int]:
    """Queries per URL, each asked once before it is counted (so no first-request caches are counted)."""
    owner = Client()
    owner.force_login(get_user_model().objects.get(username=population.owner))
    counts = {}
    for url in population_urls(population):
        client = owner if url.login else Client()
        assert client.get(url.path).status_code == 200, url
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url.path).status_code == 200, url
        counts[url.name] = len(queries)
    return counts


def _shown_rows(population: Population) -> dict[str, int]:
    """What the pages show, read back through the API: ranked rows per leaderboard and the focus's results."""
    api = Client()
    ranked = {slug: sum(not row["is_baseline"] for row in api.get(reverse("api:leaderboard", args=[slug])).json()["rows"])
              for slug in population.benchmarks}
    results = len(api.get(reverse("api:submission-results", args=[population.focus_submission])).json())
    return {**ranked, "results": results}


@dataclass
class Measured:
    queries: dict[str, int]  # per URL name
    shown: dict[str, int]  # ranked rows per leaderboard (API), results of the focus submission, all Result rows
    stored: dict[str, int]  # the same, counted in the database


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker, tmp_path_factory) -> dict[int, Measured]:
    """Per size, on its own population (rolled back before the next one)."""
    by_size = {}
    # The pages' own queries, not the page cache's: with it on, the second request of each URL would make none.
    with django_db_blocker.unblock(), override_settings(PAGE_CACHE_SECONDS=0):
        for results, plan in SIZES.items():
            with transaction.atomic():
                population = populate(results=results, plan=plan, folder=tmp_path_factory.mktemp(f"rows-{results}"))
                stored = {slug: Submission.objects.filter(benchmark__slug=slug, status=SubmissionStatus.DONE).count()
                          for slug in SLUGS}
                stored["results"] = Result.objects.filter(submission=population.focus_submission).count()
                stored["all results"] = Result.objects.count()
                shown = {**_shown_rows(population), "all results": population.results}
                by_size[results] = Measured(_count_queries(population), shown, stored)
                transaction.set_rollback(True)
    return by_size


def test_the_populations_hold_their_rows_and_the_pages_show_them(measured: dict[int, Measured]) -> None:
    for results, sizes in measured.items():
        assert sizes.shown == sizes.stored, results
        assert sizes.stored["all results"] == results
        assert list(sizes.queries) == URL_NAMES and all(sizes.queries.values())  # every page was counted
    small, large = measured[20].stored, measured[3000].stored
    assert all(small[slug] == 1 for slug in SLUGS)
    assert all(large[slug] >= 4 for slug in SLUGS) and large["results"] > 10 * small["results"]


@pytest.mark.parametrize("name", URL_NAMES)
def test_the_queries_of_a_page_do_not_grow_with_the_rows(measured: dict[int, Measured], name: str) -> None:
    few, many = measured[20].queries[name], measured[3000].queries[name]
    assert few == many, f"{name}: {few} queries with 20 Result rows, {many} with 3,000"
