"""The bias audit is computed at registration and shown on the dataset page, in the API and by a command."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from evaluation.datasets.audit import AUDIT_VERSION


def test_the_mini_benchmark_is_audited_clean_at_registration(client, mini_dataset) -> None:
    # Every mini image is a 64 px PNG: neither quality nor size can tell the classes apart.
    assert mini_dataset.audit["verdict"] == "clean"
    assert mini_dataset.audit["one_feature_accuracy"] == {"quality": 0.5, "chroma": 0.5, "jpeg": 0.5, "size": 0.5}
    assert mini_dataset.audit["version"] == AUDIT_VERSION and mini_dataset.audit["recipe"] is None
    page = client.get(reverse("benchmark-detail", args=["mini"])).content.decode()
    assert f'data-dataset="{mini_dataset.pk}">clean<' in page
    assert f'id="audit-quality-{mini_dataset.pk}"' in page and "plotly/plotly.min.js" in page
    body = client.get(reverse("api:benchmark-detail", args=["mini"])).json()
    assert body["datasets"][0]["audit"]["verdict"] == "clean"


def test_the_audit_command_recomputes_and_reports(mini_dataset) -> None:
    mini_dataset.audit = {}
    mini_dataset.save()
    out = io.StringIO()
    call_command("audit_dataset", "mini", stdout=out)
    mini_dataset.refresh_from_db()
    assert mini_dataset.audit["verdict"] == "clean" and "verdict: clean" in out.getvalue()


def test_the_audit_command_names_valid_benchmarks(mini_dataset) -> None:
    with pytest.raises(CommandError, match="Benchmarks: mini"):
        call_command("audit_dataset", "genimage")
