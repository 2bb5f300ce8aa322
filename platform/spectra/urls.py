"""URL map: pages, admin and the API (under /api/v1/)."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from spectra.api import API_PREFIX
from spectra.benchmarks import downloads
from spectra.benchmarks import views as benchmark_views
from spectra.leaderboards import views as leaderboard_views
from spectra.submissions import views as submission_views
from spectra.zoo import views as zoo_views

urlpatterns = [
    path("", benchmark_views.home, name="home"),
    path("benchmarks/<slug:slug>/", benchmark_views.benchmark_detail, name="benchmark-detail"),
    path("datasets/<str:manifest_sha256>/archives/<str:split>.tar", downloads.archive, name="dataset-archive"),
    path("datasets/<str:manifest_sha256>/SHA256SUMS", downloads.checksums, name="dataset-checksums"),
    path("datasets/<str:manifest_sha256>/manifest.jsonl", downloads.manifest, name="dataset-manifest"),
    path("leaderboards/<slug:slug>/", leaderboard_views.leaderboard, name="leaderboard"),
    path("leaderboards/<slug:slug>/<slug:tab>/", leaderboard_views.analysis_leaderboard, name="leaderboard-analysis"),
    path("zoo/", zoo_views.zoo_list, name="zoo"),
    path("zoo/<str:name>/", zoo_views.zoo_detail, name="zoo-detail"),
    path("zoo/<str:name>/weights/<str:sha256>/", zoo_views.zoo_weights, name="zoo-weights"),
    path("zoo/<str:name>/figures/<slug:figure>.<slug:fmt>", zoo_views.zoo_figure, name="zoo-figure"),
    path("submit/", submission_views.submit, name="submit"),
    path("submissions/", submission_views.my_submissions, name="my-submissions"),
    path("submissions/<int:pk>/", submission_views.submission_detail, name="submission-detail"),
    path("submissions/<int:pk>/artifact/", submission_views.submission_artifact, name="submission-artifact"),
    path("submissions/<int:pk>/wild/chains.csv", submission_views.submission_wild_chains, name="submission-wild-chains"),
    path("submissions/<int:pk>/figures/<slug:figure>.<slug:fmt>", submission_views.submission_figure,
         name="submission-figure"),
    path("accounts/", include("spectra.accounts.urls")),
    path("admin/", admin.site.urls),
    path(API_PREFIX, include("spectra.api.urls")),
]
handler400 = "spectra.core.views.bad_request"
handler404 = "spectra.core.views.not_found"
handler500 = "spectra.core.views.server_error"
