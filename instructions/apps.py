from django.apps import AppConfig


class InstructionsConfig(AppConfig):
    name = "instructions"
    verbose_name = "Platform instructions"
    default_auto_field = "django.db.models.BigAutoField"
