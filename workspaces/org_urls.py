"""Org templates and import (spec §19); included from molecule_site/urls.py."""

from django.urls import path

from workspaces import org_views as views

urlpatterns = [
    path("org/templates", views.OrgTemplatesApi.as_view()),
    path("org/import", views.OrgImportApi.as_view()),
]
