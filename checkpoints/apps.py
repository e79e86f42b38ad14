from django.apps import AppConfig


class CheckpointsConfig(AppConfig):
    name = "checkpoints"
    verbose_name = "Workflow checkpoints"
    default_auto_field = "django.db.models.BigAutoField"
