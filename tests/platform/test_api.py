"""The read API (benchmarks, leaderboard, submission status and results), its error shape, the OpenAPI
schema and the Swagger UI page, which must load nothing from other hosts."""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from evaluation.datasets.mini import MINI_GENERATORS
from evaluation.messages import ShardDone, ShardProgress
from evaluation.protocols import get_protocol
from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.services import benchmark_upsert
from spectra.submissions.models import Result, Submission
from spectra.submissions.services.runs import shard_done_record, shard_progress_record
from spectra.submissions.services.submissions import submission_create
from tests import detector_files
from tests.reference import expected_metrics, scores_with_accuracy, split_rows

GENERATORS = sorted(MINI_GENERATORS)
CROSS_GENERATOR_VERSION = get_protocol("cross-generator").version
TEST_ROWS = 1104  # 184 real test tiles and as many per generator, 5 generators


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("api")
    return [detector_files.write_onnx(folder / f"{seed}.onnx", seed=seed, input_size=32).read_bytes()
            for seed in range(4)]


@pytest.fixture
def api() -> Client:
    """An anonymous client: every read endpoint needs no login."""
    return Client()


def make_submission(owner, dataset, data: bytes, name: str) -> Submission:
    return submission_create(
        owner=owner, name=name, benchmark=dataset.benchmark, upload=SimpleUploadedFile(f"{name}.onnx", data),
        declared_format="onnx", input_size=32,
    )


def finish(submission: Submission, line_numbers: list[int], scores: list[float]) -> ShardDone:
    run = submission.runs.get()
    outcome = ShardDone(
        run_id=run.pk, status="done", evaluator_version=EVALUATOR_VERSION,
        artifact_sha256=submission.artifact.sha256, manifest_sha256=submission.dataset.manifest_sha256,
        protocol=run.protocol, protocol_version=run.protocol_version,
        row_ids=line_numbers, scores=scores,
    )
    shard_done_record(outcome=outcome)
    submission.refresh_from_db()
    assert submission.status == "done", submission.error
    return outcome


def assert_error_shape(body: object) -> None:
    assert isinstance(body, dict) and set(body) == {"message", "extra"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)


# --- benchmarks --------------------------------------------------------------------------------------


def test_the_benchmark_list_is_paginated_and_carries_datasets_with_their_manifest_and_subsets(api, mini_dataset):
    response = api.get(reverse("api:benchmark-list"))
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (1, None, None)
    [mini] = body["results"]
    assert (mini["slug"], mini["name"], mini["is_synthetic"]) == ("mini", "Mini (synthetic)", True)
    [dataset] = mini["datasets"]
    assert dataset["manifest_sha256"] == mini_dataset.manifest_sha256 and len(dataset["manifest_sha256"]) == 64
    assert (dataset["variant"], dataset["is_current"]) == ("original", True)
    subsets = {(s["split"], s["generator"]): (s["n_real"], s["n_generated"]) for s in dataset["subsets"]}
    assert len(subsets) == 3 * (1 + len(MINI_GENERATORS))
    assert subsets[("test", "")] == (184, 0)
    assert {subsets[("test", g)] for g in GENERATORS} == {(0, 184)}
    assert sum(r + g for (split, _), (r, g) in subsets.items() if split == "test") == TEST_ROWS


def test_the_benchmark_list_pages_with_limit_and_offset(api, mini_dataset):
    for slug in ("alpha", "beta"):
        benchmark_upsert(slug=slug, name=slug.title(), description="", is_synthetic=False)
    first = api.get(reverse("api:benchmark-list"), {"limit": 2}).json()
    assert first["count"] == 3 and [b["slug"] for b in first["results"]] == ["alpha", "beta"]
    assert first["next"].endswith("?limit=2&offset=2") and first["previous"] is None
    second = api.get(first["next"]).json()
    assert [b["slug"] for b in second["results"]] == ["mini"] and second["next"] is None
    assert second["results"][0]["datasets"][0]["manifest_sha256"] == mini_dataset.manifest_sha256


def test_one_benchmark_by_slug(api, mini_dataset):
    body = api.get(reverse("api:benchmark-detail", args=["mini"])).json()
    assert body["slug"] == "mini" and body["description"] == "test"
    assert [d["manifest_sha256"] for d in body["datasets"]] == [mini_dataset.manifest_sha256]
    assert len(body["datasets"][0]["subsets"]) == 3 * (1 + len(MINI_GENERATORS))


def test_an_unknown_benchmark_answers_in_the_error_shape(api, mini_dataset):
    response = api.get(reverse("api:benchmark-detail", args=["nope"]))
    body = response.json()
    assert_error_shape(body)
    assert body == {"message": "There is no benchmark 'nope'. Benchmarks: mini.", "extra": {}}
    assert response.status_code == 404


MISSING = {
    "benchmark": ("api:benchmark-detail", ["nope"]),
    "leaderboard": ("api:leaderboard", ["nope"]),
    "submission": ("api:submission-detail", [999999]),
    "results": ("api:submission-results", [999999]),
}


@pytest.mark.parametrize("what", list(MISSING))
def test_a_missing_object_is_an_error_in_the_shape(api, mini_dataset, what):
    name, args = MISSING[what]
    response = api.get(reverse(name, args=args))
    assert_error_shape(response.json())
    assert response.status_code == 404


@pytest.mark.parametrize("what", list(MISSING))
def test_a_missing_object_is_a_404(api, mini_dataset, what):
    name, args = MISSING[what]
    assert api.get(reverse(name, args=args)).status_code == 404


# --- leaderboard -------------------------------------------------------------------------------------


def test_the_leaderboard_ranks_finished_submissions_by_mean_accuracy_and_ties_share_a_rank(
    api, alice, mini_dataset, mini_root, onnx_files, test_line_numbers, send,
):
    rows = split_rows(mini_root)
    subs = [make_submission(alice, mini_dataset, data, f"d{i}") for i, data in enumerate(onnx_files)]
    finish(subs[0], test_line_numbers, scores_with_accuracy(rows, 0.75))
    finish(subs[1], test_line_numbers, scores_with_accuracy(rows, 0.875, offset=0.1))
    finish(subs[2], test_line_numbers, scores_with_accuracy(rows, 0.75, offset=0.2))
    # The fourth stays queued; a fifth (same file as the first) fails: neither is ranked.
    failed = make_submission(alice, mini_dataset, onnx_files[0], "broken")
    shard_done_record(outcome=ShardDone(
        run_id=failed.runs.get().pk, status="failed", evaluator_version=EVALUATOR_VERSION,
        artifact_sha256=failed.artifact.sha256, manifest_sha256=mini_dataset.manifest_sha256,
        protocol="cross-generator", protocol_version=CROSS_GENERATOR_VERSION, error="The detector could not be loaded.", error_kind="user",
    ))

    response = api.get(reverse("api:leaderboard", args=["mini"]))

    assert response.status_code == 200
    board = response.json()
    assert (board["benchmark"], board["is_synthetic"], board["protocol"]) == ("mini", True, "cross-generator")
    assert board["generators"] == GENERATORS
    ranked = [(r["rank"], r["submission_id"], r["mean"]["acc_mean"]) for r in board["rows"]]
    assert ranked == [(1, subs[1].pk, 0.875), (2, subs[0].pk, 0.75), (2, subs[2].pk, 0.75)]
    # Equal accuracies share a tie group; 0.875 against 0.75 on 1104 images is settled by the intervals.
    assert [r["tie_group"] for r in board["rows"]] == [1, 2, 2]
    low, high = board["rows"][0]["mean_intervals"]["acc_mean"]
    assert low < 0.875 < high and high - low < 0.1
    for row, submission in zip(board["rows"], (subs[1], subs[0], subs[2]), strict=True):
        assert row["manifest_sha256"] == mini_dataset.manifest_sha256
        assert row["evaluator_version"] == EVALUATOR_VERSION
        assert row["artifact_sha256"] == submission.artifact.sha256
        assert (row["name"], row["owner"], row["protocol_version"]) == (submission.name, "alice", CROSS_GENERATOR_VERSION)
        assert sorted(row["per_generator"]) == GENERATORS
    expected = expected_metrics(rows, np.array(scores_with_accuracy(rows, 0.875, offset=0.1)))
    assert board["rows"][0]["per_generator"]["upsample"]["ap"] == pytest.approx(expected["upsample"]["ap"])
    assert len({r["artifact_sha256"] for r in board["rows"]}) == 3


def test_an_empty_leaderboard_has_no_rows(api, mini_dataset):
    board = api.get(reverse("api:leaderboard", args=["mini"])).json()
    assert (board["rows"], board["generators"]) == ([], [])


# --- submissions -------------------------------------------------------------------------------------


def test_a_submission_shows_its_status_and_progress(api, alice, mini_dataset, onnx_files, send):
    submission = make_submission(alice, mini_dataset, onnx_files[0], "progressing")
    url = reverse("api:submission-detail", args=[submission.pk])

    body = api.get(url).json()
    assert (body["id"], body["status"], body["name"]) == (submission.pk, "queued", "progressing")
    assert body["progress"] == {"done": 0, "total": TEST_ROWS, "stage": ""}
    assert body["manifest_sha256"] == mini_dataset.manifest_sha256
    assert (body["error"], body["error_kind"], body["started"], body["finished"]) == ("", "", None, None)

    shard_progress_record(progress=ShardProgress(
        run_id=submission.runs.get().pk, done=300, total=TEST_ROWS, stage="scoring"))
    body = api.get(url).json()
    assert body["status"] == "running" and body["started"] is not None
    assert body["progress"] == {"done": 300, "total": TEST_ROWS, "stage": "scoring"}


def test_a_failed_submission_shows_its_error_in_plain_words(api, alice, mini_dataset, onnx_files, send):
    submission = make_submission(alice, mini_dataset, onnx_files[0], "bad")
    shard_done_record(outcome=ShardDone(
        run_id=submission.runs.get().pk, status="failed", evaluator_version=EVALUATOR_VERSION,
        artifact_sha256=submission.artifact.sha256, manifest_sha256=mini_dataset.manifest_sha256,
        protocol="cross-generator", protocol_version=CROSS_GENERATOR_VERSION, error="The model's output has 3 columns.", error_kind="user",
    ))
    body = api.get(reverse("api:submission-detail", args=[submission.pk])).json()
    assert (body["status"], body["error"], body["error_kind"]) == ("failed", "The model's output has 3 columns.", "user")
    assert api.get(reverse("api:submission-results", args=[submission.pk])).json() == []


def test_the_results_of_a_finished_submission_carry_their_provenance(
    api, alice, mini_dataset, mini_root, onnx_files, test_line_numbers, send,
):
    rows = split_rows(mini_root)
    submission = make_submission(alice, mini_dataset, onnx_files[1], "finished")
    scores = scores_with_accuracy(rows, 0.625, offset=0.05)
    finish(submission, test_line_numbers, scores)
    expected = expected_metrics(rows, np.array(scores))

    assert api.get(reverse("api:submission-detail", args=[submission.pk])).json()["progress"] == {
        "done": TEST_ROWS, "total": TEST_ROWS, "stage": "done"}
    results = api.get(reverse("api:submission-results", args=[submission.pk])).json()
    results = [r for r in results if not r["condition"]]  # the clean rows (not the reliability bins)
    assert [r["subset"] for r in results] == ["mean", *GENERATORS]  # the mean first
    for result in results:
        for name, value in expected[result["subset"]].items():
            assert result["metrics"][name] == pytest.approx(value)
            low, high = result["intervals"][name]
            assert low <= value + 1e-9 and value - 1e-9 <= high
        assert (result["protocol"], result["protocol_version"], result["schema_version"]) == (
            "cross-generator", CROSS_GENERATOR_VERSION, Result.SCHEMA_VERSION)
        assert result["evaluator_version"] == EVALUATOR_VERSION
        assert result["manifest_sha256"] == mini_dataset.manifest_sha256
        assert result["artifact_sha256"] == submission.artifact.sha256


# --- schema and docs ---------------------------------------------------------------------------------

API_PATHS = {
    "/api/v1/benchmarks/", "/api/v1/benchmarks/{slug}/", "/api/v1/benchmarks/{slug}/leaderboard/",
    "/api/v1/submissions/", "/api/v1/submissions/{id}/", "/api/v1/submissions/{id}/results/",
}


def test_the_openapi_schema_lists_every_endpoint(api, db):
    response = api.get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "Spectra API"
    assert set(schema["paths"]) == API_PATHS
    assert set(schema["paths"]["/api/v1/submissions/"]) == {"post"}
    assert "multipart/form-data" in schema["paths"]["/api/v1/submissions/"]["post"]["requestBody"]["content"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    yaml = api.get(reverse("api:schema"))
    assert yaml.status_code == 200 and b"/api/v1/benchmarks/{slug}/leaderboard/:" in yaml.content


def test_the_schema_documents_progress_as_an_object(api, db):
    schema = json.loads(api.get(reverse("api:schema"), {"format": "json"}).content)
    schemas = schema["components"]["schemas"]
    progress = schemas["SubmissionOutput"]["properties"]["progress"]
    ref = progress.get("$ref") or progress["allOf"][0]["$ref"]
    target = schemas[ref.rsplit("/", 1)[-1]]
    assert target["type"] == "object" and set(target["properties"]) == {"done", "total", "stage"}


def test_the_api_docs_page_loads_only_local_static_files(api, db):
    response = api.get(reverse("api:docs"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>" not in page  # the start-up script is its own request: the CSP allows no inline script
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page)
    references = [html.unescape(ref) for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)]
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in references)
    start_up = [ref for ref in references if ref.startswith(reverse("api:docs") + "?")]
    assert len(start_up) == 1
    script = api.get(start_up[0])
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode() and '"/api/schema/"' in script.content.decode()
    for reference in set(references) - set(start_up):
        assert reference.startswith("/static/"), reference
        served = api.get(reference)
        assert served.status_code == 200, reference
        served.close()
