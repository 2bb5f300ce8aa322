"""The wild protocol's section and the reliability diagrams of a submission's page, from stored Result rows."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation.metrics import CALIBRATION_BINS
from evaluation.protocols import MEAN_SUBSET, RANKED_PROTOCOL, wild
from evaluation.protocols.cross_generator import ALL_SUBSET, RELIABILITY, RELIABILITY_SERIES, bin_metric
from evaluation.wild import PRESETS, Preset, get_kind, list_kinds
from spectra.submissions.models import Result


@dataclass
class WildRow:
    subset: str
    clean: Result | None
    chains: Result | None
    drop: Result | None
    presets: list[Result | None]


@dataclass
class WildSection:
    protocol_version: int
    seed: int
    rows: list[WildRow]
    presets: list[Preset]
    kinds: list[tuple[str, str]]  # (name, description)
    figures: dict[str, dict] = field(default_factory=dict)
    reproduction: Any = None  # spectra.submissions.reproduce.Reproduction, set by the view
    protocol = wild.NAME


def _kind_matrix(rows: list[Result], subsets: list[str]) -> dict:
    """Generator × distortion kind heatmap of ROC-AUC under the chains, on the images whose chain holds the kind."""
    cells = {(r.subset, r.condition.removeprefix(wild.KIND_PREFIX)): r.metrics.get("roc_auc")
             for r in rows if r.condition.startswith(wild.KIND_PREFIX)}
    kinds = list_kinds()
    heatmap = {"type": "heatmap", "name": "ROC-AUC", "x": kinds, "y": subsets,
               "z": [[cells.get((s, k)) for k in kinds] for s in subsets], "zmin": 0.5, "zmax": 1,
               "colorscale": "Viridis", "colorbar": {"title": {"text": "ROC-AUC"}}}
    return {"data": [heatmap], "layout": {"height": 120 + 28 * len(subsets), "margin": {"t": 30, "b": 110},
                                          "xaxis": {"tickangle": -45}}}


def wild_section(results: list[Result]) -> WildSection | None:
    """The wild protocol's numbers per subset, with the kind matrix; None when it did not run."""
    rows = [r for r in results if r.protocol == wild.NAME]
    if not rows:
        return None
    by_key = {(r.subset, r.condition): r for r in rows}
    subsets = sorted({r.subset for r in rows if r.condition == wild.CHAINS}, key=lambda s: (s != MEAN_SUBSET, s))
    config = {**wild.PROTOCOL.default_config, **rows[0].config}
    presets = [PRESETS[name] for name in config["presets"] if name in PRESETS]
    table = [WildRow(s, by_key.get((s, "")), by_key.get((s, wild.CHAINS)), by_key.get((s, wild.DROP)),
                     [by_key.get((s, p.name)) for p in presets]) for s in subsets]
    generator_subsets = [s for s in subsets if (s, f"{wild.KIND_PREFIX}{list_kinds()[0]}") in by_key]
    return WildSection(
        protocol_version=rows[0].protocol_version, seed=int(config["seed"]), rows=table, presets=presets,
        kinds=[(name, get_kind(name).description) for name in list_kinds()],
        figures={"wild-kinds": _kind_matrix(rows, generator_subsets)},
    )


def _reliability_trace(result: Result, name: str) -> dict:
    confidence_name, frequency_name, count_name = RELIABILITY_SERIES
    confidence = [result.metrics.get(bin_metric(confidence_name, b)) for b in range(CALIBRATION_BINS)]
    frequency = [result.metrics.get(bin_metric(frequency_name, b)) for b in range(CALIBRATION_BINS)]
    bounds = [(result.intervals or {}).get(bin_metric(frequency_name, b)) for b in range(CALIBRATION_BINS)]
    kept = [b for b in range(CALIBRATION_BINS) if confidence[b] is not None and frequency[b] is not None]
    return {"type": "scatter", "mode": "lines+markers", "name": name, "x": [confidence[b] for b in kept],
            "y": [frequency[b] for b in kept],
            "text": [f"{result.metrics.get(bin_metric(count_name, b)):.0f} images" for b in kept],
            "error_y": {"type": "data", "symmetric": False,
                        "array": [(bounds[b] or [0, frequency[b]])[1] - frequency[b] for b in kept],
                        "arrayminus": [frequency[b] - (bounds[b] or [frequency[b], 0])[0] for b in kept]}}


def reliability_figure(results: list[Result]) -> dict | None:
    """Reliability diagram over all test images, clean (cross-generator) and under the wild chains when stored;
    each generator's clean diagram is in the legend, hidden until clicked."""
    wanted = {(RANKED_PROTOCOL, RELIABILITY): "clean", (wild.NAME, wild.ROBUST_RELIABILITY): "under the wild chains"}
    chosen = [r for r in results if (r.protocol, r.condition) in wanted]
    traces = [_reliability_trace(r, wanted[(r.protocol, r.condition)]) for r in chosen if r.subset == ALL_SUBSET]
    if not traces:
        return None
    traces += [_reliability_trace(r, f"{r.subset} (clean)") | {"visible": "legendonly"} for r in chosen
               if r.subset != ALL_SUBSET and r.protocol == RANKED_PROTOCOL]
    diagonal = {"type": "scatter", "mode": "lines", "name": "perfectly calibrated", "x": [0, 1], "y": [0, 1],
                "line": {"dash": "dot", "color": "grey"}}
    layout = {"height": 380, "margin": {"t": 30}, "xaxis": {"title": {"text": "mean p(generated) in the bin"}, "range": [0, 1]},
              "yaxis": {"title": {"text": "share of generated images"}, "range": [0, 1]}}
    return {"data": [*traces, diagonal], "layout": layout}
