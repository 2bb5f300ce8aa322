from __future__ import annotations

from django.contrib import admin

from spectra.submissions.models import Artifact, EvaluationRun, ImageScores, Result, Submission


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["sha256", "format", "owner", "size", "input_size", "created"]
    list_filter = ["format"]
    readonly_fields = ["sha256", "size", "file"]


class EvaluationRunInline(admin.TabularInline):
    model = EvaluationRun
    extra = 0
    readonly_fields = ["protocol", "protocol_version", "shard", "status", "stage", "done", "total", "heartbeat"]


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "owner", "benchmark", "private", "status", "created", "finished"]
    list_filter = ["status", "private", "benchmark"]
    search_fields = ["name", "owner__username", "artifact__sha256"]
    inlines = [EvaluationRunInline]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["submission", "protocol", "shard", "status", "done", "total", "heartbeat"]
    list_filter = ["protocol", "status"]


@admin.register(Result)
class ResultAdmin(admin.ModelAdmin):
    list_display = ["submission", "protocol", "subset", "evaluator_version", "manifest_sha256", "artifact_sha256"]
    list_filter = ["protocol", "subset"]


@admin.register(ImageScores)
class ImageScoresAdmin(admin.ModelAdmin):
    list_display = ["run", "count"]
    exclude = ["row_ids", "scores"]
