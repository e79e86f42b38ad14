import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

PROJECT_APPS = ["workspaces", "registry", "secrets_app", "memory", "activity"]
SPEC_TABLES = {
    "workspaces", "agents", "structure_events", "workspace_secrets", "global_secrets", "canvas_layouts",
    "canvas_viewport", "workspace_config", "workspace_memory", "approval_requests", "agent_memories",
    "activity_logs", "workspace_auth_tokens",
}


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", *PROJECT_APPS, "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_migrations_apply_from_zero_and_back():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate([(app, None) for app in PROJECT_APPS])
    with connection.cursor() as cursor:
        assert SPEC_TABLES.isdisjoint(connection.introspection.table_names(cursor))

    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        assert SPEC_TABLES <= tables
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname = 'structure_events_no_update_delete'")
        assert cursor.fetchone() is not None
