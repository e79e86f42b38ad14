from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # provisioning (below the A2A proxy) announces restarts; the briefing goes through the proxy
        from registry import restart_context
        from workspaces.provisioning import runtime_restarted

        runtime_restarted.connect(restart_context.queue_restart_context, dispatch_uid="registry.restart_context")
