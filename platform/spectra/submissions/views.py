"""HTML views of submissions: the upload form and the submission page."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from evaluation.protocols import RANKED_PROTOCOL
from spectra.core.downloads import stored_file_response
from spectra.core.errors import ApplicationError
from spectra.core.pagecache import cached_read
from spectra.core.views import methods_allowed, read_only
from spectra.submissions import selectors
from spectra.submissions.charts import results_chart, robustness_sections
from spectra.submissions.forms import SubmissionForm
from spectra.submissions.services.submissions import submission_create


@login_required
@methods_allowed("GET", "HEAD", "POST")
def submit(request: HttpRequest) -> HttpResponse:
    # Bound on every POST, even one whose body parsed to nothing, so it is answered with what is missing.
    form = SubmissionForm(request.POST, request.FILES) if request.method == "POST" else SubmissionForm()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            submission = submission_create(
                owner=request.user, name=data["name"], benchmark=data["benchmark"], upload=data["file"],
                declared_format=data["format"], input_size=data["input_size"], source=data["source"],
                architecture=data["architecture"], private=data["private"],
            )
        except ApplicationError as error:
            form.add_error("file", error.message)
        else:
            messages.success(request, "Uploaded. The evaluation is queued; this page follows its progress.")
            return redirect("submission-detail", pk=submission.pk)
    return render(request, "submissions/submit.html", {"form": form}, status=400 if form.errors else 200)


@read_only
@cached_read
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        submission = selectors.submission_get(pk=pk, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from None
    results = selectors.result_list(submission=submission)
    groups: dict[int, list] = {}
    for result in results:
        groups.setdefault(result.dataset_id, []).append(result)
    ranked = [r for r in groups.get(submission.dataset_id, []) if r.protocol == RANKED_PROTOCOL]
    robustness = robustness_sections([r for r in groups.get(submission.dataset_id, []) if r.protocol != RANKED_PROTOCOL])
    context = {
        "submission": submission,
        "progress": selectors.submission_progress(submission=submission),
        "isolation": selectors.submission_isolation(submission=submission),
        "results": ranked,
        "other_variants": [(rows[0].dataset, rows) for pk, rows in groups.items() if pk != submission.dataset_id],
        "robustness": robustness,
        "figures": {"chart": results_chart(ranked)} | {f"robustness-{s.protocol}": s.figure for s in robustness}
        if ranked else {},
        "resamples": settings.SPECTRA_BOOTSTRAP_RESAMPLES,
        "artifact_downloadable": selectors.artifact_downloadable(submission=submission, user=request.user),
    }
    return render(request, "submissions/detail.html", context)


@login_required
@read_only
@cached_read
def my_submissions(request: HttpRequest) -> HttpResponse:
    return render(request, "submissions/list.html", {"submissions": selectors.submission_list(owner=request.user)})


def submission_artifact(request: HttpRequest, pk: int) -> HttpResponse:
    """The uploaded detector file, for its owner and staff: always an attachment of opaque bytes (never rendered)."""
    try:
        artifact = selectors.submission_artifact_get(pk=pk, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from None
    return stored_file_response(request, artifact.file.name, filename=f"submission-{pk}-{artifact.sha256[:12]}."
                                f"{artifact.extension}", etag=artifact.sha256)
