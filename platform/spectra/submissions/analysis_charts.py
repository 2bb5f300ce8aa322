"""The analyses on a submission's page, drawn from stored Result rows (never recomputed on a view): accuracy versus
ε, the generator × attack matrix and SpectralDefense's numbers and ROC curves; the loss surface, its slice and the
Hessian's eigenvalue density."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation.attacks import ATTACKS, parse_condition
from evaluation.metrics import MEAN_ACCURACY
from evaluation.protocols import MEAN_SUBSET, get_protocol, indicators, landscape
from evaluation.protocols.adversarial import CLEAN, DEFENSE, NAME, ROBUST, ROBUST_METRIC, TRANSFER
from spectra.submissions.models import Result


@dataclass
class DefenseRow:
    attack: str
    features: str
    result: Result


@dataclass
class AdversarialSection:
    title: str
    protocol_version: int
    epsilon: float
    robust: Result | None
    defense: list[DefenseRow] = field(default_factory=list)
    minimisation: dict[str, Any] = field(default_factory=dict)  # the L2 attacks' median perturbations
    figures: dict[str, dict] = field(default_factory=dict)
    reproduction: Any = None  # spectra.submissions.reproduce.Reproduction, set by the view

    protocol = NAME

    @property
    def robust_accuracy(self) -> float | None:
        return self.robust.metrics.get(ROBUST_METRIC) if self.robust else None

    @property
    def transfer(self) -> bool:
        return bool(self.robust and self.robust.metrics.get(TRANSFER))

    @property
    def surrogate(self) -> str:
        """The transfer surrogate's zoo architecture and weights hash."""
        config = self.robust.config if self.robust else {}
        return f"{config.get('surrogate_architecture', '')} (sha256 {config.get('surrogate_sha256', '')[:12]})"


def _accuracy_versus_epsilon(rows: list[Result]) -> dict:
    """Mean accuracy (subset "mean") against ε for each L∞ attack, clean at ε = 0, with 95 % intervals."""
    means = {r.condition: r for r in rows if r.subset == MEAN_SUBSET}
    traces = []
    for name, attack in ATTACKS.items():
        points = sorted((eps, r) for c, r in means.items() if (p := parse_condition(c)) and p[0] == name
                        and (eps := p[1]) is not None)
        if not points:
            continue
        if CLEAN in means:
            points.insert(0, (0.0, means[CLEAN]))
        values = [r.metrics.get(MEAN_ACCURACY) for _, r in points]
        bounds = [(r.intervals or {}).get(MEAN_ACCURACY) or [v, v] for (_, r), v in zip(points, values, strict=True)]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": attack.title, "x": [e for e, _ in points],
                       "y": values, "error_y": {"type": "data", "symmetric": False,
                                                "array": [hi - v for v, (_, hi) in zip(values, bounds, strict=True)],
                                                "arrayminus": [v - lo for v, (lo, _) in zip(values, bounds, strict=True)]}})
    layout = {"xaxis": {"title": {"text": "ε (L∞, pixel units in [0, 1])"}},
              "yaxis": {"range": [0, 1], "title": {"text": "mean accuracy under attack"}}, "margin": {"t": 30}}
    return {"data": traces, "layout": layout}


def _generator_matrix(rows: list[Result]) -> dict:
    conditions = list(dict.fromkeys(r.condition for r in rows if parse_condition(r.condition) or r.condition == CLEAN))
    subsets = sorted({r.subset for r in rows if r.condition in conditions}, key=lambda s: (s != MEAN_SUBSET, s))
    cells = {(r.subset, r.condition): r.metrics.get(MEAN_ACCURACY) for r in rows}
    heatmap = {"type": "heatmap", "x": conditions, "y": subsets, "zmin": 0, "zmax": 1, "colorscale": "Viridis",
               "z": [[cells.get((s, c)) for c in conditions] for s in subsets],
               "colorbar": {"title": {"text": "mean acc."}}}
    return {"data": [heatmap], "layout": {"margin": {"t": 30}, "height": 320}}


def _roc(defense: list[DefenseRow]) -> dict:
    traces = [{"type": "scatter", "mode": "lines", "name": f"{ATTACKS[d.attack].title} · {d.features}",
               "x": d.result.metrics["roc"]["fpr"], "y": d.result.metrics["roc"]["tpr"]}
              for d in defense if d.result.metrics.get("roc")]
    traces.append({"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1],
                   "line": {"dash": "dot", "color": "#999"}})
    layout = {"xaxis": {"title": {"text": "false positive rate (clean flagged)"}, "range": [0, 1]},
              "yaxis": {"title": {"text": "true positive rate (adversarial detected)"}, "range": [0, 1]},
              "margin": {"t": 30}}
    return {"data": traces, "layout": layout}


def adversarial_section(results: list[Result]) -> AdversarialSection | None:
    """The adversarial protocol's results of one dataset version, or None when it did not run there."""
    rows = [r for r in results if r.protocol == NAME]
    if not rows:
        return None
    by_key = {(r.subset, r.condition): r for r in rows}
    defense = [DefenseRow(attack=attack, features=kind, result=r) for r in rows
               if r.condition.startswith(f"{DEFENSE}:") for _, attack, kind in [r.condition.split(":")]]
    summary = by_key.get((MEAN_SUBSET, DEFENSE))
    section = AdversarialSection(
        title=get_protocol(NAME).title, protocol_version=rows[0].protocol_version,
        epsilon=float({**get_protocol(NAME).default_config, **rows[0].config}["epsilon"]),  # the run's own ε
        robust=by_key.get((MEAN_SUBSET, ROBUST)),
        defense=sorted(defense, key=lambda d: (list(ATTACKS).index(d.attack), d.features)),
        minimisation={k: v for k, v in (summary.metrics if summary else {}).items() if k.endswith("_median_l2")},
    )
    section.figures = {"adversarial-epsilon": _accuracy_versus_epsilon(rows),
                       "adversarial-generators": _generator_matrix(rows),
                       "adversarial-roc": _roc(section.defense)}
    return section



@dataclass
class LandscapeSection:
    title: str
    protocol_version: int
    sharpness: Result | None
    figures: dict[str, dict] = field(default_factory=dict)
    reproduction: Any = None  # spectra.submissions.reproduce.Reproduction, set by the view

    protocol = landscape.NAME

    @property
    def eigenvalues(self) -> list[float]:
        return self.sharpness.metrics.get("eigenvalues", []) if self.sharpness else []


def surface_figures(xs: list[float], ys: list[float], loss: list[float], key: str,
                    path: dict[str, Any] | None = None) -> dict[str, dict]:
    """``key``-surface (3-D, its contour projected below) and ``key``-contour of a loss stored x-major on xs × ys,
    with a path over both when given ({"x", "y", "z"}) or the centre (the weights) marked on the contour."""
    z = [[loss[i * len(ys) + j] for i in range(len(xs))] for j in range(len(ys))]  # rows: y; columns: x
    marker = ({"type": "scatter", "mode": "lines+markers", "name": "training trajectory", "x": path["x"], "y": path["y"],
               "line": {"color": "red"}} if path else
              {"type": "scatter", "mode": "markers", "x": [0], "y": [0], "name": "the detector's weights",
               "marker": {"color": "red", "size": 9}})
    surface = [{"type": "surface", "x": xs, "y": ys, "z": z, "colorscale": "Viridis", "name": "loss",
                "contours": {"z": {"show": True, "usecolormap": True, "project": {"z": True}}}}]
    if path:
        surface.append({**marker, "type": "scatter3d", "z": path["z"]})
    axes = {"xaxis": {"title": {"text": "direction 1"}}, "yaxis": {"title": {"text": "direction 2"}}}
    return {
        f"{key}-surface": {"data": surface, "layout": {"margin": {"t": 30}, "height": 480,
                                                      "scene": {**axes, "zaxis": {"title": {"text": "mean BCE"}}}}},
        f"{key}-contour": {"data": [{"type": "contour", "x": xs, "y": ys, "z": z, "colorscale": "Viridis",
                                     "ncontours": 30, "name": "loss"}, marker],
                           "layout": {"margin": {"t": 30}, **axes}},
    }


def _surface_figures(surface: dict[str, Any]) -> dict[str, dict]:
    """The loss surface and its contour, the 1-D slice and the eigenvalue density."""
    xs, ys, loss = surface.get("xs") or [], surface.get("ys") or [], surface.get("loss") or []
    figures = surface_figures(xs, ys, loss, "landscape") if loss else {}
    line = surface.get("slice") or {}
    if line:
        figures["landscape-slice"] = {"data": [{"type": "scatter", "mode": "lines", "name": "mean BCE",
                                                "x": line["t"], "y": line["loss"]}],
                                      "layout": {"margin": {"t": 30}, "xaxis": {"title": {"text": "step along direction 1"}},
                                                 "yaxis": {"title": {"text": "mean BCE"}}}}
    density = surface.get("density") or {}
    if density:
        figures["landscape-density"] = {"data": [{"type": "scatter", "mode": "lines", "fill": "tozeroy",
                                                  "name": "density", "x": density["t"], "y": density["density"]}],
                                        "layout": {"margin": {"t": 30}, "xaxis": {"title": {"text": "Hessian eigenvalue"}},
                                                   "yaxis": {"title": {"text": "density"}, "type": "log"}}}
    return figures


def landscape_section(results: list[Result]) -> LandscapeSection | None:
    rows = {r.condition: r for r in results if r.protocol == landscape.NAME and r.subset == MEAN_SUBSET}
    if landscape.SHARPNESS not in rows:
        return None
    surface = rows.get(landscape.SURFACE)
    return LandscapeSection(title=get_protocol(landscape.NAME).title,
                            protocol_version=rows[landscape.SHARPNESS].protocol_version,
                            sharpness=rows[landscape.SHARPNESS],
                            figures=_surface_figures(surface.metrics if surface else {}))


def indicators_result(results: list[Result]) -> Result | None:
    """The indicators analysis's numbers (one row), or None when it did not run."""
    return next((r for r in results if r.protocol == indicators.NAME and r.condition == indicators.CONDITION), None)
