"""Read-only API of leaderboard rows."""
from __future__ import annotations

from dataclasses import fields

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.protocols import RANKED_PROTOCOL
from spectra.benchmarks.selectors import benchmark_get
from spectra.leaderboards.selectors import leaderboard_generators, leaderboard_rows, leaderboard_variants


class LeaderboardRowOutput(serializers.Serializer):
    rank = serializers.IntegerField(help_text="0 on a baseline row: baselines are shown in place, unranked.")
    submission_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    owner = serializers.CharField()
    mean = serializers.DictField(child=serializers.FloatField(allow_null=True))
    mean_intervals = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(), allow_null=True),
        help_text="metric -> [low, high]: 95 % stratified bootstrap interval",
    )
    tie_group = serializers.IntegerField(help_text="Rows whose intervals overlap the group's first row share a group.")
    per_generator = serializers.DictField(child=serializers.DictField(child=serializers.FloatField(allow_null=True)))
    per_generator_intervals = serializers.DictField(
        child=serializers.DictField(child=serializers.ListField(child=serializers.FloatField(), allow_null=True)))
    protocol_version = serializers.IntegerField()
    evaluator_version = serializers.CharField()
    manifest_sha256 = serializers.CharField()
    artifact_sha256 = serializers.CharField(allow_blank=True)
    by_variant = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                       help_text="dataset variant -> mean accuracy on that version (a baseline's "
                                                 "too: what the shortcut alone scores there)")
    by_variant_intervals = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(), allow_null=True),
        help_text="dataset variant -> [low, high]: 95 % stratified bootstrap interval of by_variant")
    bias_gap = serializers.FloatField(allow_null=True, help_text="Mean accuracy on the raw version minus on the "
                                      "unbiased one (evaluation.bias_gap): how much of the score the dataset's "
                                      "biases explain.")
    bias_gap_interval = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    zoo_entry = serializers.CharField(allow_blank=True, help_text="The models_zoo entry of a zoo baseline row.")
    is_baseline = serializers.BooleanField()
    baseline = serializers.CharField(allow_blank=True)
    barely_beats_baseline = serializers.BooleanField(
        help_text="Its 95 % interval of mean accuracy reaches the best shortcut baseline's.")


class LeaderboardOutput(serializers.Serializer):
    benchmark = serializers.CharField()
    is_synthetic = serializers.BooleanField()
    protocol = serializers.CharField()
    generators = serializers.ListField(child=serializers.CharField())
    variants = serializers.ListField(child=serializers.CharField())
    rows = LeaderboardRowOutput(many=True)


class LeaderboardApi(APIView):
    @extend_schema(responses=LeaderboardOutput)
    def get(self, request: Request, slug: str) -> Response:
        benchmark = benchmark_get(slug=slug)
        rows = leaderboard_rows(benchmark=benchmark, user=request.user)
        data = {
            "benchmark": benchmark.slug, "is_synthetic": benchmark.is_synthetic, "protocol": RANKED_PROTOCOL,
            "generators": leaderboard_generators(rows), "variants": leaderboard_variants(rows),
            # A shallow dict per row: the serializer copies every value anyway, and asdict's deep copy took as
            # long as the rest of the request (perf/load_leaderboard.py).
            "rows": [{f.name: getattr(row, f.name) for f in fields(row)} for row in rows],
        }
        return Response(LeaderboardOutput(data).data)
