"""A minimal Django project serving django-eventstream for pushbench."""
