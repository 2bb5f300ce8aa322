"""HTML views of benchmarks."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.benchmarks.selectors import benchmark_get, benchmark_list
from spectra.core.errors import ApplicationError


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"benchmarks": benchmark_list()})


def benchmark_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        benchmark = benchmark_get(slug=slug)
    except ApplicationError as error:
        raise Http404(error.message) from None
    datasets = benchmark.datasets.prefetch_related("subsets")
    return render(request, "benchmarks/detail.html", {"benchmark": benchmark, "datasets": datasets})
