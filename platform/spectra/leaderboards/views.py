"""The leaderboard page of a benchmark."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.benchmarks.selectors import benchmark_get
from spectra.core.errors import ApplicationError
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.core.views import read_only
from spectra.leaderboards.selectors import analysis_rows, leaderboard_generators, leaderboard_rows, leaderboard_variants
from spectra.leaderboards.tabs import ANALYSIS_TABS


def _benchmark(slug: str):
    try:
        return benchmark_get(slug=slug)
    except ApplicationError as error:
        raise Http404(error.message) from None


@read_only
@cached_read(scopes=RESULTS_ONLY)
def leaderboard(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = _benchmark(slug)
    rows = leaderboard_rows(benchmark=benchmark, user=request.user)
    variants = leaderboard_variants(rows)
    context = {"benchmark": benchmark, "rows": rows, "generators": leaderboard_generators(rows), "variants": variants,
               "show_gap": "unbiased" in variants and len(variants) > 1, "tabs": ANALYSIS_TABS.values()}
    return render(request, "leaderboards/leaderboard.html", context)


@read_only
@cached_read(scopes=RESULTS_ONLY)
def analysis_leaderboard(request: HttpRequest, slug: str, tab: str) -> HttpResponse:
    benchmark = _benchmark(slug)
    if tab not in ANALYSIS_TABS:
        raise Http404(f"No leaderboard tab {tab!r}; the tabs are: {', '.join(ANALYSIS_TABS)}.")
    rows = analysis_rows(benchmark=benchmark, user=request.user, tab=ANALYSIS_TABS[tab])
    context = {"benchmark": benchmark, "tab": ANALYSIS_TABS[tab], "tabs": ANALYSIS_TABS.values(), "rows": rows,
               "evaluator_versions": sorted({r.evaluator_version for r in rows})}
    return render(request, "leaderboards/analysis.html", context)
