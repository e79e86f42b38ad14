"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
