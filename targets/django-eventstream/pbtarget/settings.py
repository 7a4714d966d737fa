"""Settings of the pushbench django-eventstream target.

The smallest project django-eventstream runs in: no auth, no sessions, no
templates. Its storage is enabled (the default `DjangoModelStorage`, events in
the database) so a client resuming with `Last-Event-ID` gets what it missed.
The database is SQLite in a fresh temporary directory per process,
`$TMPDIR/pushbench-django-<pid>`, in WAL mode so the publisher's writes do not
block readers. uvicorn ends by re-raising SIGTERM, so no exit hook runs:
instead each start removes the directories of processes that are gone.
"""

import os
import shutil
import tempfile

_PREFIX = "pushbench-django-"


def _fresh_db_dir() -> str:
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        pid = name[len(_PREFIX) :] if name.startswith(_PREFIX) else ""
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    path = os.path.join(tmp, f"{_PREFIX}{os.getpid()}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


_db_dir = _fresh_db_dir()

SECRET_KEY = "pushbench-target-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_eventstream",
    "pbtarget.apps.PbTargetConfig",
]
MIDDLEWARE = []
ROOT_URLCONF = "pbtarget.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_db_dir, "events.sqlite3"),
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
