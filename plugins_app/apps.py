from django.apps import AppConfig


class PluginsConfig(AppConfig):
    name = "plugins_app"
    label = "plugins_app"
    verbose_name = "Plugins and skills"
    default_auto_field = "django.db.models.BigAutoField"
