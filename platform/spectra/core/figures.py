"""A page's figure as a download: the Plotly JSON it is drawn from, or its points as CSV."""
from __future__ import annotations

import csv
import io
import json

from django.http import Http404, HttpResponse

FIGURE_FORMATS = ("json", "csv")


def figure_rows(figure: dict) -> list[list[object]]:
    """A figure's data as rows of (trace, x, y, z): one per point, or per cell of a heatmap or surface."""
    rows: list[list[object]] = [["trace", "x", "y", "z"]]
    for trace in figure.get("data", []):
        if trace.get("type") in ("heatmap", "surface", "contour"):
            rows += [[trace.get("name", trace["type"]), x, y, value]
                     for y, line in zip(trace["y"], trace["z"], strict=True) for x, value in zip(trace["x"], line, strict=True)]
        else:
            zs = trace.get("z") or [""] * len(trace.get("x", []))
            rows += [[trace.get("name", ""), x, y, z]
                     for x, y, z in zip(trace.get("x", []), trace.get("y", []), zs, strict=True)]
    return rows


def figure_response(figures: dict[str, dict], figure: str, fmt: str, owner: str) -> HttpResponse:
    """``figures[figure]`` as ``<owner>-<figure>.<fmt>``; 404 in plain words for an unknown figure or format."""
    if fmt not in FIGURE_FORMATS:
        raise Http404(f"Figures come as {' or '.join(FIGURE_FORMATS)}, not {fmt!r}.")
    if figure not in figures:
        raise Http404(f"{owner} has no figure {figure!r}; it has: {', '.join(figures) or 'none yet'}.")
    if fmt == "json":
        response = HttpResponse(json.dumps(figures[figure], indent=1), content_type="application/json")
    else:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(figure_rows(figures[figure]))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{owner.lower().replace(" ", "-").replace("#", "")}-{figure}.{fmt}"'
    return response
