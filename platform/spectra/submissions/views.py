"""HTML views of submissions: the upload form and the submission page."""
from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from evaluation.protocols import RANKED_PROTOCOL, indicators, list_analyses, wild
from spectra.core.downloads import as_attachment, stored_file_response
from spectra.core.errors import ApplicationError
from spectra.core.figures import figure_response
from spectra.core.pagecache import cached_read
from spectra.core.views import methods_allowed, read_only
from spectra.submissions import selectors
from spectra.submissions.analysis_charts import adversarial_section, indicators_result, landscape_section
from spectra.submissions.charts import attribution_section, results_chart, robustness_sections
from spectra.submissions.forms import SubmissionForm
from spectra.submissions.reproduce import reproductions
from spectra.submissions.services.submissions import submission_create
from spectra.submissions.wild_charts import reliability_figure, wild_section


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
                architecture=data["architecture"], private=data["private"], analyses=data["analyses"],
            )
        except ApplicationError as error:
            form.add_error("file", error.message)
        else:
            messages.success(request, "Uploaded. The evaluation is queued; this page follows its progress.")
            return redirect("submission-detail", pk=submission.pk)
    return render(request, "submissions/submit.html", {"form": form}, status=400 if form.errors else 200)


def _submission_visible(request: HttpRequest, pk: int):
    try:
        return selectors.submission_get(pk=pk, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from None


def _sections(submission) -> dict:
    """The page's result sections and every figure on it (id -> Plotly figure), from stored Result rows."""
    results = selectors.result_list(submission=submission)
    groups: dict[int, list] = {}
    for result in results:
        groups.setdefault(result.dataset_id, []).append(result)
    on_ranked = groups.get(submission.dataset_id, [])
    clean_ranked = [r for r in on_ranked if r.protocol == RANKED_PROTOCOL]
    ranked = [r for r in clean_ranked if not r.condition]
    attribution = attribution_section(clean_ranked)
    own_sections = {RANKED_PROTOCOL, wild.NAME, *list_analyses()}
    robustness = robustness_sections([r for r in on_ranked if r.protocol not in own_sections])
    adversarial, landscape, in_the_wild = adversarial_section(on_ranked), landscape_section(on_ranked), wild_section(on_ranked)
    figures = ({"chart": results_chart(ranked)} | {f"robustness-{s.protocol}": s.figure for s in robustness}
               if ranked else {})
    for section in (adversarial, landscape, in_the_wild):
        figures |= section.figures if section else {}
    if reliability := reliability_figure(on_ranked):
        figures["reliability"] = reliability
    if attribution and attribution.figure:
        figures["confusion"] = attribution.figure
    every_command = reproductions(submission=submission, results=results)
    commands = {protocol: command for (dataset, protocol), command in every_command.items()
                if dataset == submission.dataset_id}
    for section in (*robustness, adversarial, landscape, in_the_wild):
        if section is not None:
            section.reproduction = commands.get(section.protocol)
    return {"results": ranked, "robustness": robustness, "adversarial": adversarial, "landscape": landscape,
            "wild": in_the_wild, "attribution": attribution, "indicators": indicators_result(on_ranked), "figures": figures,
            "reproduce_ranked": commands.get(RANKED_PROTOCOL), "reproduce_indicators": commands.get(indicators.NAME),
            "other_variants": [(rows[0].dataset, [r for r in rows if r.protocol == RANKED_PROTOCOL and not r.condition],
                                every_command.get((pk, RANKED_PROTOCOL)))
                               for pk, rows in groups.items() if pk != submission.dataset_id]}


@read_only
@cached_read
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    submission = _submission_visible(request, pk)
    context = {
        "submission": submission,
        "progress": selectors.submission_progress(submission=submission),
        "isolation": selectors.submission_isolation(submission=submission),
        "not_applicable": selectors.analyses_not_applicable(submission=submission),
        "resamples": settings.SPECTRA_BOOTSTRAP_RESAMPLES,
        "artifact_downloadable": selectors.artifact_downloadable(submission=submission, user=request.user),
        "wild_chains_public": selectors.wild_chains_public(submission=submission),
        **_sections(submission),
    }
    return render(request, "submissions/detail.html", context)


@read_only
@cached_read
def submission_figure(request: HttpRequest, pk: int, figure: str, fmt: str) -> HttpResponse:
    """One figure of the submission's page as the arrays it is drawn from: Plotly JSON, or CSV."""
    return figure_response(_sections(_submission_visible(request, pk))["figures"], figure, fmt, f"Submission #{pk}")


class _Echo:
    """A file-like object whose write returns the line, so csv.writer feeds a streaming response."""

    def write(self, value: str) -> str:
        return value


@read_only
def submission_wild_chains(request: HttpRequest, pk: int) -> HttpResponse:
    """Every image of the wild evaluation with its chain and logits, as CSV, streamed."""
    submission = _submission_visible(request, pk)
    try:
        lines = selectors.wild_chain_lines(submission=submission)
    except ApplicationError as error:
        raise Http404(error.message) from None
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(map(writer.writerow, lines), content_type="text/csv; charset=utf-8")
    return as_attachment(response, f"submission-{pk}-wild-chains.csv")


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
