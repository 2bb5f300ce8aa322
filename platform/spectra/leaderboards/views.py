"""The leaderboard page of a benchmark."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.benchmarks.selectors import benchmark_get
from spectra.core.errors import ApplicationError
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.core.views import read_only
from spectra.leaderboards.selectors import leaderboard_generators, leaderboard_rows, leaderboard_variants


@read_only
@cached_read(scopes=RESULTS_ONLY)
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        benchmark = benchmark_get(slug=slug)
    except ApplicationError as error:
        raise Http404(error.message) from None
    rows = leaderboard_rows(benchmark=benchmark, user=request.user)
    variants = leaderboard_variants(rows)
    context = {"benchmark": benchmark, "rows": rows, "generators": leaderboard_generators(rows), "variants": variants,
               "show_gap": "unbiased" in variants and len(variants) > 1}
    return render(request, "leaderboards/leaderboard.html", context)
