from __future__ import annotations

from django.contrib import admin

from spectra.benchmarks.models import Benchmark, Dataset, Subset


class SubsetInline(admin.TabularInline):
    model = Subset
    extra = 0
    readonly_fields = ["generator", "split", "n_real", "n_generated"]


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_synthetic", "created"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["benchmark", "variant", "manifest_sha256", "is_current", "created"]
    list_filter = ["benchmark", "variant", "is_current"]
    readonly_fields = ["manifest_sha256"]
    inlines = [SubsetInline]


@admin.register(Subset)
class SubsetAdmin(admin.ModelAdmin):
    list_display = ["dataset", "generator", "split", "n_real", "n_generated"]
    list_filter = ["split"]
