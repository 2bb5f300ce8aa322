"""Zoo pages: every entry's card, and its experiments as Plotly charts. No torch is imported here."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from spectra.core.downloads import stored_file_response
from spectra.core.errors import ApplicationError
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.core.views import read_only
from spectra.zoo.selectors import (
    zoo_artifact_get,
    zoo_card_get,
    zoo_card_list,
    zoo_debiasing_effect,
    zoo_experiment_list,
    zoo_row_accuracy,
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


@read_only
@cached_read(scopes=RESULTS_ONLY)
def zoo_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        card = zoo_card_get(name=name)
    except ApplicationError as error:
        raise Http404(error.message) from None
    family = name.split("-")[0]
    experiments = [(e, few_shot_figure(e.data)) for e in zoo_experiment_list(entry=family) if e.name == "few-shot"]
    noise = [e for e in zoo_experiment_list(entry=family) if e.name == "label-noise"]
    rows = list(zoo_submission_list(entry=name, user=request.user))
    accuracy = zoo_row_accuracy(rows=rows)
    return render(request, "zoo/detail.html", {
        "card": card, "experiments": experiments, "noise": noise, "effects": zoo_debiasing_effect(entry=name, user=request.user),
        "rows": [(row, accuracy.get(row.pk, [])) for row in rows],
        "figures": {f"experiment-{e.pk}": figure for e, figure in experiments},
    })


@read_only
def zoo_weights(request: HttpRequest, name: str, sha256: str) -> HttpResponse:
    """A file of a zoo row (safetensors, TorchScript or ONNX), streamed (resumable), named by its sha256."""
    try:
        artifact = zoo_artifact_get(entry=name, sha256=sha256, user=request.user)
    except ApplicationError as error:
        raise Http404(error.message) from None
    filename = f"{name}-{sha256[:12]}.{artifact.extension}"
    return stored_file_response(request, artifact.file.name, filename=filename, etag=sha256)
