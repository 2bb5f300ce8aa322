"""The API's URL map; endpoints live with their app. Swagger UI is the split view: its start-up script is a separate
request, never inline (the Content-Security-Policy allows no inline script)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from spectra.benchmarks.apis import BenchmarkDetailApi, BenchmarkListApi
from spectra.core.pagecache import RESULTS_ONLY, cached_read
from spectra.leaderboards.apis import LeaderboardApi
from spectra.submissions.apis import SubmissionCreateApi, SubmissionDetailApi, SubmissionResultsApi

app_name = "api"
urlpatterns = [
    path("v1/benchmarks/", cached_read(BenchmarkListApi.as_view(), scopes=RESULTS_ONLY), name="benchmark-list"),
    path("v1/benchmarks/<slug:slug>/", cached_read(BenchmarkDetailApi.as_view(), scopes=RESULTS_ONLY), name="benchmark-detail"),
    path("v1/benchmarks/<slug:slug>/leaderboard/", cached_read(LeaderboardApi.as_view(), scopes=RESULTS_ONLY), name="leaderboard"),
    path("v1/submissions/", SubmissionCreateApi.as_view(), name="submission-create"),
    path("v1/submissions/<int:pk>/", cached_read(SubmissionDetailApi.as_view()), name="submission-detail"),
    path("v1/submissions/<int:pk>/results/", cached_read(SubmissionResultsApi.as_view(), scopes=RESULTS_ONLY), name="submission-results"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
