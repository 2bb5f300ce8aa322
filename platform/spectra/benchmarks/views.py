"""HTML views of benchmarks."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.benchmarks.selectors import benchmark_get, benchmark_list
from spectra.core.errors import ApplicationError
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.core.views import read_only


@read_only
@cached_read(scopes=RESULTS_ONLY)
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"benchmarks": benchmark_list()})


@read_only
@cached_read(scopes=RESULTS_ONLY)
def benchmark_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        benchmark = benchmark_get(slug=slug)
    except ApplicationError as error:
        raise Http404(error.message) from None
    datasets = list(benchmark.datasets.prefetch_related("subsets"))
    figures = {f"audit-{name}-{d.pk}": figure for d in datasets if d.audit
               for name, figure in audit_charts(d.audit).items()}
    return render(request, "benchmarks/detail.html", {"benchmark": benchmark, "datasets": datasets, "figures": figures})


def _bars(distributions: dict, key: str, limit: int) -> dict:
    """Grouped bars of one distribution (share of each group's images), the ``limit`` most common values."""
    totals: dict[str, int] = {}
    for counts in distributions.values():
        for value, n in counts[key].items():
            totals[value] = totals.get(value, 0) + n
    values = sorted(totals, key=lambda v: -totals[v])[:limit]
    traces = []
    for group, counts in distributions.items():
        n = sum(counts[key].values()) or 1
        traces.append({"type": "bar", "name": group, "x": values, "y": [counts[key].get(v, 0) / n for v in values]})
    return {"data": traces, "layout": {"barmode": "group", "title": {"text": key}, "yaxis": {"title": "share"},
                                       "xaxis": {"type": "category"}, "margin": {"t": 40}, "height": 320}}


def audit_charts(audit: dict) -> dict:
    distributions = audit.get("distributions", {})
    return {"quality": _bars(distributions, "quality", 20), "size": _bars(distributions, "size", 20)}
