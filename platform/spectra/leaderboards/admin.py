from django.contrib import admin

from spectra.leaderboards.models import BaselineResult


@admin.register(BaselineResult)
class BaselineResultAdmin(admin.ModelAdmin):
    list_display = ["dataset", "baseline", "protocol", "subset", "created"]
    list_filter = ["baseline", "protocol"]
    readonly_fields = ["created"]
