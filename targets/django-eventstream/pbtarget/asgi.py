"""ASGI entry point: set up Django, create the event tables, start the publisher.

All three happen before uvicorn serves the first request, so `/healthz`
answering means the target is ready: tables exist and events are flowing.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbtarget.settings")

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.management import call_command  # noqa: E402

application = get_asgi_application()
call_command("migrate", verbosity=0, interactive=False)

from pbtarget import publisher  # noqa: E402

publisher.start_from_env()
