"""The API's URL map; endpoints live with their app. Swagger UI is the split view: its start-up script is a separate
request, never inline (the Content-Security-Policy allows no inline script)."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from spectra.benchmarks.apis import BenchmarkDetailApi, BenchmarkListApi
from spectra.leaderboards.apis import LeaderboardApi
from spectra.submissions.apis import SubmissionCreateApi, SubmissionDetailApi, SubmissionResultsApi

app_name = "api"
urlpatterns = [
    path("v1/benchmarks/", BenchmarkListApi.as_view(), name="benchmark-list"),
    path("v1/benchmarks/<slug:slug>/", BenchmarkDetailApi.as_view(), name="benchmark-detail"),
    path("v1/benchmarks/<slug:slug>/leaderboard/", LeaderboardApi.as_view(), name="leaderboard"),
    path("v1/submissions/", SubmissionCreateApi.as_view(), name="submission-create"),
    path("v1/submissions/<int:pk>/", SubmissionDetailApi.as_view(), name="submission-detail"),
    path("v1/submissions/<int:pk>/results/", SubmissionResultsApi.as_view(), name="submission-results"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
