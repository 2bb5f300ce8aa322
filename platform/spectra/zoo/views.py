"""Zoo pages: every entry's card, and its experiments as Plotly charts. No torch is imported here."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.core.downloads import stored_file_response
from spectra.core.errors import ApplicationError
from spectra.core.figures import figure_response
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.core.views import read_only
from spectra.submissions.analysis_charts import surface_figures
from spectra.zoo.selectors import (
    zoo_artifact_get,
    zoo_card_get,
    zoo_card_list,
    zoo_debiasing_effect,
    zoo_experiment_list,
    zoo_row_accuracy,
    zoo_row_wild,
    zoo_submission_list,
)


@read_only
@cached_read(scopes=RESULTS_ONLY)
def zoo_list(request: HttpRequest) -> HttpResponse:
    return render(request, "zoo/list.html", {"cards": zoo_card_list()})


def few_shot_figure(data: dict) -> dict:
    traces = [{"type": "scatter", "mode": "lines+markers", "name": method, "x": data["sizes"], "y": curve["mean"],
               "error_y": {"type": "data", "array": curve["std"]}} for method, curve in data["methods"].items()]
    layout = {"xaxis": {"type": "log", "title": {"text": "labelled training images"}},
              "yaxis": {"range": [0, 1], "title": {"text": "test accuracy"}}, "margin": {"t": 30}, "height": 360}
    return {"data": traces, "layout": layout}


def indicator_figure(data: dict, indicator: str) -> dict:
    """One point per model of the population study: the indicator against the JPEG-robustness area."""
    variants = sorted({m["variant"] for m in data["models"]})
    traces = [{"type": "scatter", "mode": "markers", "name": variant,
               "x": [m[indicator] for m in data["models"] if m["variant"] == variant],
               "y": [m["jpeg_area"] for m in data["models"] if m["variant"] == variant],
               "text": [m["name"] for m in data["models"] if m["variant"] == variant]} for variant in variants]
    layout = {"xaxis": {"title": {"text": indicator}}, "yaxis": {"title": {"text": "JPEG-robustness area"}},
              "margin": {"t": 30}, "height": 320}
    return {"data": traces, "layout": layout}


def trajectory_figures(data: dict, key: str) -> dict[str, dict]:
    """The loss surface around a zoo model in its trajectory's PCA plane, in 3-D and as a contour, with the path."""
    path = {"x": [p[0] for p in data["path"]], "y": [p[1] for p in data["path"]], "z": data["path_loss"]}
    return surface_figures(data["xs"], data["ys"], data["loss"], key, path=path)


def _card(name: str):
    try:
        return zoo_card_get(name=name)
    except ApplicationError as error:
        raise Http404(error.message) from None


def _experiments(name: str) -> dict:
    """The entry's family's stored experiments by kind, and every figure drawn from them (id -> figure)."""
    found = zoo_experiment_list(entry=name.split("-")[0])
    experiments = [(e, few_shot_figure(e.data)) for e in found if e.name == "few-shot"]
    studies = [e for e in found if e.name == "population"]
    trajectories = [e for e in found if e.name == "trajectory"]
    figures = {f"experiment-{e.pk}": figure for e, figure in experiments}
    figures |= {f"indicator-{e.pk}-{i}": indicator_figure(e.data, i) for e in studies for i in e.data["indicators"]}
    for e in trajectories:
        figures |= trajectory_figures(e.data, f"trajectory-{e.pk}")
    return {"experiments": experiments, "noise": [e for e in found if e.name == "label-noise"], "studies": studies,
            "trajectories": trajectories, "figures": figures}


@read_only
@cached_read(scopes=RESULTS_ONLY)
def zoo_detail(request: HttpRequest, name: str) -> HttpResponse:
    card = _card(name)
    rows = list(zoo_submission_list(entry=name, user=request.user))
    accuracy, in_the_wild = zoo_row_accuracy(rows=rows), zoo_row_wild(rows=rows)
    return render(request, "zoo/detail.html", {
        "card": card, "effects": zoo_debiasing_effect(entry=name, user=request.user),
        "rows": [(row, accuracy.get(row.pk, []), in_the_wild.get(row.pk)) for row in rows], **_experiments(name),
    })


@read_only
@cached_read(scopes=RESULTS_ONLY)
def zoo_figure(request: HttpRequest, name: str, figure: str, fmt: str) -> HttpResponse:
    """One figure of the entry's page as the arrays it is drawn from: Plotly JSON, or CSV."""
    card = _card(name)
    return figure_response(_experiments(name)["figures"], figure, fmt, f"Zoo {card.name}")


@read_only
def zoo_weights(request: HttpRequest, name: str, sha256: str) -> HttpResponse:
    """A file of a zoo row (safetensors, TorchScript or ONNX), streamed (resumable), named by its sha256."""
    try:
        artifact = zoo_artifact_get(entry=name, sha256=sha256, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from None
    filename = f"{name}-{sha256[:12]}.{artifact.extension}"
    return stored_file_response(request, artifact.file.name, filename=filename, etag=sha256)
