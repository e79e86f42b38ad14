"""Root URL map. API routes carry no trailing slash, exactly as the original's."""

from django.contrib import admin
from django.urls import path
from django_prometheus.exports import ExportToDjangoView

from molecule_site import views

handler404 = "molecule_site.wire.handler404"

urlpatterns = [
    path("health", views.health, name="health"),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("django-admin/", admin.site.urls),
]
