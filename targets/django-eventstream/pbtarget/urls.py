"""Routes: django-eventstream at /events/ (channels from `?channel=`) and /healthz."""

from django.http import HttpResponse
from django.urls import include, path


def healthz(_request):
    """Readiness: answered only once asgi.py has migrated and started the publisher."""
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("events/", include("django_eventstream.urls")),
    path("healthz", healthz),
]
