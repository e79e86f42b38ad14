"""A version number for the org tree, moved by PostgreSQL itself whenever the tree changes.

Hierarchy answers (``registry.selectors.acan_communicate``) are cached per process under this
version. The trigger bumps it in the changing transaction, for every way a row can change (the
ORM, raw SQL, the admin, a psql session), so a cached answer can never outlive the tree it was
computed from: readers see the new version exactly when they see the new tree.
"""

from django.db import migrations

FORWARD = """
CREATE TABLE workspace_tree_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL
);
INSERT INTO workspace_tree_version (version) VALUES (1);

CREATE FUNCTION bump_workspace_tree_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workspace_tree_version SET version = version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workspace_tree_changed
AFTER INSERT OR DELETE OR UPDATE OF parent_id OR TRUNCATE ON workspaces
FOR EACH STATEMENT EXECUTE FUNCTION bump_workspace_tree_version();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS workspace_tree_changed ON workspaces;
DROP FUNCTION IF EXISTS bump_workspace_tree_version();
DROP TABLE IF EXISTS workspace_tree_version;
"""


class Migration(migrations.Migration):
    dependencies = [("workspaces", "0002_one_active_agent")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
