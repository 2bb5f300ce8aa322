"""Plotly figures (as JSON data) and tables of a submission's results, built from stored Result rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation.attribution import ATTRIBUTION, CONFUSION, REAL_CLASS
from evaluation.metrics import MEAN_ACCURACY
from evaluation.protocols import MEAN_SUBSET, get_protocol
from evaluation.protocols.robustness import AREA
from spectra.submissions.models import Result


def _error_bars(results: list, key: str) -> dict:
    """Asymmetric error bars from the stored 95 % intervals (zero-length where a subset has none)."""
    values = [r.metrics.get(key) for r in results]
    bounds = [(r.intervals or {}).get(key) or [v, v] for r, v in zip(results, values, strict=True)]
    return {"type": "data", "symmetric": False,
            "array": [hi - v if v is not None else 0 for v, (_, hi) in zip(values, bounds, strict=True)],
            "arrayminus": [v - lo if v is not None else 0 for v, (lo, _) in zip(values, bounds, strict=True)]}


def results_chart(results: list) -> dict:
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


@dataclass
class RobustnessSection:
    protocol: str
    title: str
    conditions: list[str]
    subsets: list[str]
    areas: list[Result] = field(default_factory=list)  # one row per subset: the normalised areas
    figure: dict[str, Any] = field(default_factory=dict)
    reproduction: Any = None  # spectra.submissions.reproduce.Reproduction, set by the view


def _matrix(results: list[Result], subsets: list[str], conditions: list[str]) -> list[list[float | None]]:
    cells = {(r.subset, r.condition): r.metrics.get(MEAN_ACCURACY) for r in results}
    return [[cells.get((s, c)) for c in conditions] for s in subsets]


def robustness_sections(results: list[Result]) -> list[RobustnessSection]:
    """Per robustness protocol: the generator × perturbation heatmap of mean accuracy, the curves, the areas."""
    sections = []
    for protocol in sorted({r.protocol for r in results}):
        rows = [r for r in results if r.protocol == protocol]
        conditions = list(dict.fromkeys(r.condition for r in rows if r.condition != AREA))
        subsets = sorted({r.subset for r in rows}, key=lambda s: (s != MEAN_SUBSET, s))
        matrix = _matrix(rows, subsets, conditions)
        heatmap = {"type": "heatmap", "x": conditions, "y": subsets, "z": matrix, "zmin": 0, "zmax": 1,
                   "colorscale": "Viridis", "colorbar": {"title": {"text": "mean acc."}}}
        curves = [{"type": "scatter", "mode": "lines+markers", "name": subset, "x": conditions, "y": line,
                   "xaxis": "x2", "yaxis": "y2"} for subset, line in zip(subsets, matrix, strict=True)]
        layout = {"grid": {"rows": 1, "columns": 2, "pattern": "independent"}, "height": 360, "margin": {"t": 30},
                  "yaxis2": {"range": [0, 1], "title": {"text": "mean accuracy"}}, "showlegend": True}
        sections.append(RobustnessSection(
            protocol=protocol, title=get_protocol(protocol).title, conditions=conditions, subsets=subsets,
            areas=sorted((r for r in rows if r.condition == AREA), key=lambda r: (r.subset != MEAN_SUBSET, r.subset)),
            figure={"data": [heatmap, *curves], "layout": layout},
        ))
    return sections


@dataclass
class AttributionSection:
    headline: Result  # subset "mean": accuracy, balanced accuracy and the class counts
    classes: list[str]
    figure: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        return self.headline.metrics.get("classes_returned") != self.headline.metrics.get("classes_declared")


def attribution_section(results: list[Result]) -> AttributionSection | None:
    """An attribution detector's accuracy and its confusion matrix (rows: true class, shares by predicted class)."""
    headline = next((r for r in results if r.condition == ATTRIBUTION and r.subset == MEAN_SUBSET), None)
    if headline is None:
        return None
    rows = {r.subset: r for r in results if r.condition == CONFUSION}
    classes = [REAL_CLASS, *sorted(name for name in rows if name != REAL_CLASS)]
    heatmap = {"type": "heatmap", "name": "share", "x": classes, "y": classes, "zmin": 0, "zmax": 1,
               "z": [[rows[true].metrics.get(f"to_{predicted}") for predicted in classes] for true in classes],
               "colorscale": "Blues", "colorbar": {"title": {"text": "share"}}}
    layout = {"height": 160 + 32 * len(classes), "margin": {"t": 30},
              "xaxis": {"title": {"text": "predicted"}}, "yaxis": {"title": {"text": "true"}, "autorange": "reversed"}}
    return AttributionSection(headline, classes if rows else [], {"data": [heatmap], "layout": layout} if rows else {})
