"""Read-only API of benchmarks and their dataset versions."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spectra.api.pagination import DefaultPagination
from spectra.benchmarks.models import Benchmark, Dataset, Subset
from spectra.benchmarks.selectors import benchmark_get, benchmark_list


class SubsetOutput(serializers.ModelSerializer):
    class Meta:
        model = Subset
        fields = ["generator", "split", "n_real", "n_generated"]


class DatasetOutput(serializers.ModelSerializer):
    subsets = SubsetOutput(many=True)

    class Meta:
        model = Dataset
        fields = ["variant", "description", "manifest_sha256", "is_current", "licence", "citation", "created", "subsets", "audit",
                  "hidden_splits", "archives"]


class BenchmarkOutput(serializers.ModelSerializer):
    datasets = DatasetOutput(many=True)

    class Meta:
        model = Benchmark
        fields = ["slug", "name", "description", "is_synthetic", "datasets"]


class BenchmarkListApi(APIView):
    pagination_class = DefaultPagination

    @extend_schema(responses=BenchmarkOutput(many=True))
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(benchmark_list().prefetch_related("datasets__subsets"), request, view=self)
        return paginator.get_paginated_response(BenchmarkOutput(page, many=True).data)


class BenchmarkDetailApi(APIView):
    @extend_schema(responses=BenchmarkOutput)
    def get(self, request: Request, slug: str) -> Response:
        return Response(BenchmarkOutput(benchmark_get(slug=slug)).data)
