"""Who sees what: one table of the exact outcome for every (role, page or endpoint) pair.

Rows are the five kinds of visitor; columns every page and endpoint that shows a submission or its results, the
uploaded files, the hidden split's data and the staff-only admin. A private submission is visible to its owner and
staff only, and to everyone else it does not exist (404, never 403, so its existence does not leak). A person's
uploaded file is downloadable by them and staff only, private or not. A hidden split's labels reach nobody over HTTP.
"""
from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from collections.abc import Callable

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from evaluation.messages import ShardDone
from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.benchmarks.services import dataset_archives_build
from spectra.submissions.models import Submission
from spectra.submissions.services.runs import shard_done_record
from spectra.submissions.services.submissions import submission_create
from spectra.zoo.selectors import zoo_debiasing_effect
from tests.reference import scores_with_accuracy, split_rows

ROLES = ("anonymous", "other", "owner", "staff", "superuser")
ZOO_ENTRY = "resnet50"
# The whole policy. Statuses are HTTP codes; "listed"/"absent" say whether a 200 list shows the private row,
# "public rows" that a manifest download has no hidden-split line, "no labels" that a hidden archive names its
# images by keyed ids only.
MATRIX: dict[str, tuple[str, str, str, str, str]] = {
    #                               anonymous      other          owner          staff          superuser
    "private: page":               ("404",         "404",         "200",         "200",         "200"),
    "private: API detail":         ("404",         "404",         "200",         "200",         "200"),
    "private: API results":        ("404",         "404",         "200",         "200",         "200"),
    "private: artifact":           ("404",         "404",         "200",         "200",         "200"),
    "private: leaderboard page":   ("absent",      "absent",      "listed",      "listed",      "listed"),
    "private: leaderboard API":    ("absent",      "absent",      "listed",      "listed",      "listed"),
    "private: my submissions":     ("302",         "absent",      "listed",      "absent",      "absent"),
    "private zoo row: zoo page":   ("absent",      "absent",      "listed",      "listed",      "listed"),
    "private zoo row: weights":    ("404",         "404",         "200",         "200",         "200"),
    "public: page":                ("200",         "200",         "200",         "200",         "200"),
    "public: API results":         ("200",         "200",         "200",         "200",         "200"),
    "public: leaderboard page":    ("listed",      "listed",      "listed",      "listed",      "listed"),
    "public: artifact":            ("404",         "404",         "200",         "200",         "200"),
    "hidden split: manifest":      ("public rows", "public rows", "public rows", "public rows", "public rows"),
    "hidden split: archive":       ("no labels",   "no labels",   "no labels",   "no labels",   "no labels"),
    "admin: index":                ("302",         "302",         "302",         "200",         "200"),
    "admin: private submission":   ("302",         "302",         "302",         "403",         "200"),
    "admin: log-in lockouts":      ("302",         "302",         "302",         "403",         "200"),
}


def finish(submission: Submission, rows: list[dict], line_numbers: list[int]) -> None:
    """Record the submission's one shard as scored (60 % right in every group)."""
    run = submission.runs.get()
    shard_done_record(outcome=ShardDone(
        run_id=run.pk, status="done", evaluator_version=EVALUATOR_VERSION, artifact_sha256=submission.artifact.sha256,
        manifest_sha256=submission.dataset.manifest_sha256, protocol=run.protocol, protocol_version=run.protocol_version,
        row_ids=line_numbers, scores=scores_with_accuracy(rows, 0.6)))


@pytest.fixture
def world(alice, mini_dataset, mini_root, onnx_bytes, test_line_numbers, send) -> dict:
    users = get_user_model().objects
    clients = {"anonymous": Client()}
    for role, user in {"other": users.create_user("bob", password="x"), "owner": alice,
                       "staff": users.create_user("carol", password="x", is_staff=True),
                       "superuser": users.create_superuser("root", password="x")}.items():
        clients[role] = Client()
        clients[role].force_login(user)

    def upload(name: str, **fields) -> Submission:
        return submission_create(owner=alice, name=name, benchmark=mini_dataset.benchmark, declared_format="onnx",
                                 upload=SimpleUploadedFile("d.onnx", onnx_bytes), **fields)

    private = upload("hidden detector", input_size=32, private=True)
    public = upload("open detector", input_size=33)
    zoo_row = upload("hidden zoo row", input_size=34, private=True, zoo_entry=ZOO_ENTRY)
    for submission in (private, public):
        finish(submission, split_rows(mini_root), test_line_numbers)
    dataset_archives_build(dataset=mini_dataset)
    return {"clients": clients, "private": private, "public": public, "zoo_row": zoo_row, "dataset": mini_dataset}


def status(url: str) -> Callable[[Client, dict], str]:
    return lambda client, world: str(client.get(url.format(**world)).status_code)


def listed(url: str, mark: str) -> Callable[[Client, dict], str]:
    """Whether the 200 page or JSON at ``url`` shows ``mark`` (formatted with the world), else its status."""
    def check(client: Client, world: dict) -> str:
        response = client.get(url.format(**world))
        if response.status_code != 200:
            return str(response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return "listed" if mark.format(**world) in body.decode() else "absent"
    return check


def manifest_rows(client: Client, world: dict) -> str:
    response = client.get(f"/datasets/{world['dataset'].manifest_sha256}/manifest.jsonl")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    hidden = set(world["dataset"].hidden_splits)
    return f"{response.status_code}" if response.status_code != 200 else (
        "public rows" if lines and not any(line["split"] in hidden for line in lines) else "hidden rows")


def hidden_archive(client: Client, world: dict) -> str:
    response = client.get(f"/datasets/{world['dataset'].manifest_sha256}/archives/test.tar")
    if response.status_code != 200:
        return str(response.status_code)
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        names = tar.getnames()
        columns = set(next(csv.DictReader(io.StringIO(tar.extractfile("test/ids.csv").read().decode()))))
    opaque = all(re.fullmatch(r"test/[0-9a-f]{32,}\.png", name) for name in names if name != "test/ids.csv")
    return "no labels" if opaque and columns == {"id", "width", "height", "format"} else "labels"


CHECKS: dict[str, Callable[[Client, dict], str]] = {
    "private: page": status("/submissions/{private.pk}/"),
    "private: API detail": status("/api/v1/submissions/{private.pk}/"),
    "private: API results": status("/api/v1/submissions/{private.pk}/results/"),
    "private: artifact": status("/submissions/{private.pk}/artifact/"),
    "private: leaderboard page": listed("/leaderboards/mini/", 'data-submission="{private.pk}"'),
    "private: leaderboard API": listed("/api/v1/benchmarks/mini/leaderboard/", '"submission_id":{private.pk},'),
    "private: my submissions": listed("/submissions/", 'href="/submissions/{private.pk}/"'),
    "private zoo row: zoo page": listed(f"/zoo/{ZOO_ENTRY}/", 'data-submission="{zoo_row.pk}"'),
    "private zoo row: weights": status(f"/zoo/{ZOO_ENTRY}/weights/{{zoo_row.artifact.sha256}}/"),
    "public: page": status("/submissions/{public.pk}/"),
    "public: API results": status("/api/v1/submissions/{public.pk}/results/"),
    "public: leaderboard page": listed("/leaderboards/mini/", 'data-submission="{public.pk}"'),
    "public: artifact": status("/submissions/{public.pk}/artifact/"),
    "hidden split: manifest": manifest_rows,
    "hidden split: archive": hidden_archive,
    "admin: index": status("/admin/"),
    "admin: private submission": status("/admin/submissions/submission/{private.pk}/change/"),
    "admin: log-in lockouts": status("/admin/axes/accessattempt/"),
}


def test_every_role_sees_exactly_what_the_table_says(world) -> None:
    assert set(CHECKS) == set(MATRIX)
    observed = {column: tuple(check(world["clients"][role], world) for role in ROLES)
                for column, check in CHECKS.items()}
    assert observed == MATRIX


def not_found_message(response, pk: int) -> str:
    """What a 404 says (the API's message, or the page's error line), with the number asked for blanked out."""
    assert response.status_code == 404
    text = response.json()["message"] if response["Content-Type"] == "application/json" else \
        re.search(r'<p class="error">(.*?)</p>', response.content.decode()).group(1)
    return text.replace(f"#{pk}", "#N")


def test_a_private_submission_is_not_found_in_the_same_words_as_a_missing_one(world) -> None:
    client, private = world["clients"]["other"], world["private"].pk
    missing = Submission.objects.order_by("-pk").first().pk + 1
    for url in ("/submissions/{}/", "/api/v1/submissions/{}/", "/api/v1/submissions/{}/results/",
                "/submissions/{}/artifact/"):
        hidden = not_found_message(client.get(url.format(private)), private)
        assert hidden == not_found_message(client.get(url.format(missing)), missing) == "There is no submission #N."


def test_the_ranks_others_see_skip_the_private_row(world) -> None:
    def ranks(role: str) -> dict:
        rows = world["clients"][role].get("/api/v1/benchmarks/mini/leaderboard/").json()["rows"]
        return {row["submission_id"]: row["rank"] for row in rows if not row["is_baseline"]}

    assert ranks("other") == {world["public"].pk: 1}
    assert ranks("owner") == {world["private"].pk: 1, world["public"].pk: 1}  # equal scores share the rank


def test_the_submit_form_and_the_api_create_private_submissions(alice, alice_client, mini_dataset, onnx_bytes,
                                                                 send) -> None:
    fields = {"benchmark": "mini", "format": "onnx", "input_size": "32"}
    response = alice_client.post("/submit/", {**fields, "name": "by form", "private": "on",
                                              "file": SimpleUploadedFile("d.onnx", onnx_bytes)})
    assert response.status_code == 302
    by_form = Submission.objects.get(name="by form")
    assert by_form.private
    assert '<span class="badge" id="private">private</span>' in alice_client.get(f"/submissions/{by_form.pk}/").content.decode()
    token = Token.objects.create(user=alice)
    created = Client().post("/api/v1/submissions/", {**fields, "name": "by api", "private": "true", "input_size": "33",
                                                    "file": SimpleUploadedFile("d.onnx", onnx_bytes)},
                            HTTP_AUTHORIZATION=f"Token {token.key}")
    assert created.status_code == 201 and created.json()["private"] is True
    assert Submission.objects.get(name="by api").private
    public = Client().post("/api/v1/submissions/", {**fields, "name": "open", "input_size": "34",
                                                   "file": SimpleUploadedFile("d.onnx", onnx_bytes)},
                           HTTP_AUTHORIZATION=f"Token {token.key}")
    assert public.status_code == 201 and public.json()["private"] is False


def test_the_zoo_debiasing_effect_counts_only_the_rows_the_viewer_may_see(db, django_user_model) -> None:
    from tests.platform.test_variant_means import _stored, _versions
    from tests.platform.test_zoo_pages import _zoo_rows

    versions = _versions(slug=ZOO_ENTRY)
    accuracy, halves = _stored(range(2), np.random.default_rng(4))
    _zoo_rows(versions["original"].benchmark, versions, ZOO_ENTRY, accuracy, halves)
    Submission.objects.filter(name="biased1".ljust(64, "0")).update(private=True)
    staff = django_user_model.objects.create_user("carol", is_staff=True)
    # Seed 0's pair for everyone; seed 1's pair only for staff (its biased-trained row is private).
    assert {effect.by_seed for effect in zoo_debiasing_effect(entry=ZOO_ENTRY, user=None)} == {
        ((0, accuracy[(0, "unbiased")][variant] - accuracy[(0, "biased")][variant]),) for variant in VARIANT_ORDER}
    assert {effect.seeds for effect in zoo_debiasing_effect(entry=ZOO_ENTRY, user=staff)} == {2}
