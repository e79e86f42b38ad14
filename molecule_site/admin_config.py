"""Installs the operator admin site (``molecule_site.admin_site``) as Django's default admin site.

Kept apart from the site module: app configs load before models, and the site's dashboard imports
them.
"""

from django.contrib.admin.apps import AdminConfig


class MoleculeAdminConfig(AdminConfig):
    default_site = "molecule_site.admin_site.MoleculeAdminSite"
