"""HTML views of submissions: the upload form and the submission page."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from spectra.core.errors import ApplicationError
from spectra.submissions import selectors, services
from spectra.submissions.forms import SubmissionForm


@login_required
def submit(request: HttpRequest) -> HttpResponse:
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            submission = services.submission_create(
                owner=request.user, name=data["name"], benchmark=data["benchmark"], upload=data["file"],
                declared_format=data["format"], input_size=data["input_size"],
            )
        except ApplicationError as error:
            form.add_error("file", error.message)
        else:
            messages.success(request, "Uploaded. The evaluation is queued; this page follows its progress.")
            return redirect("submission-detail", pk=submission.pk)
    return render(request, "submissions/submit.html", {"form": form}, status=400 if form.errors else 200)


def _error_bars(results: list, key: str) -> dict:
    """Asymmetric error bars from the stored 95 % intervals (zero-length where a subset has none)."""
    values = [r.metrics.get(key) for r in results]
    bounds = [(r.intervals or {}).get(key) or [v, v] for r, v in zip(results, values, strict=True)]
    return {"type": "data", "symmetric": False,
            "array": [hi - v if v is not None else 0 for v, (_, hi) in zip(values, bounds, strict=True)],
            "arrayminus": [v - lo if v is not None else 0 for v, (lo, _) in zip(values, bounds, strict=True)]}


def _chart(results: list) -> dict:
    """Plotly traces: per-generator accuracy on real, on generated and AP, with 95 % intervals."""
    subsets = [r.subset for r in results]
    traces = [
        {"type": "bar", "name": label, "x": subsets, "y": [r.metrics.get(key) for r in results],
         "error_y": _error_bars(results, key)}
        for key, label in [("acc_real", "accuracy (real)"), ("acc_generated", "accuracy (generated)"),
                           ("ap", "average precision")]
    ]
    layout = {"barmode": "group", "yaxis": {"range": [0, 1], "title": "value"}, "margin": {"t": 30}}
    return {"data": traces, "layout": layout}


def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        submission = selectors.submission_get(pk=pk)
    except ApplicationError:
        raise Http404(f"There is no submission #{pk}.") from None
    results = selectors.result_list(submission=submission)
    groups: dict[int, list] = {}
    for result in results:
        groups.setdefault(result.dataset_id, []).append(result)
    ranked = groups.get(submission.dataset_id, [])
    context = {
        "submission": submission,
        "progress": selectors.submission_progress(submission=submission),
        "results": ranked,
        "other_versions": [(rows[0].dataset, rows) for pk, rows in groups.items() if pk != submission.dataset_id],
        "chart": _chart(ranked) if ranked else None,
        "resamples": settings.SPECTRA_BOOTSTRAP_RESAMPLES,
    }
    return render(request, "submissions/detail.html", context)


@login_required
def my_submissions(request: HttpRequest) -> HttpResponse:
    return render(request, "submissions/list.html", {"submissions": selectors.submission_list(owner=request.user)})
