from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Token usage and spend"
    default_auto_field = "django.db.models.BigAutoField"
