"""The app that holds the health check (pushbench's readiness probe)."""

from django.apps import AppConfig


class PbTargetConfig(AppConfig):
    name = "pbtarget"
    default_auto_field = "django.db.models.AutoField"
