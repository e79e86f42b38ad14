"""The database cascades too: a platform span can be exported for a workspace while it is being
purged (the batch thread inserts between the ORM's cascade collection and the DELETE), so the
foreign key itself says ON DELETE CASCADE and the purge never fails on it."""

from django.db import migrations

FORWARD = """
DO $$
DECLARE name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'trace_spans'::regclass AND contype = 'f'
      AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = 'trace_spans'::regclass
                                                          AND attname = 'workspace_id')];
    EXECUTE format('ALTER TABLE trace_spans DROP CONSTRAINT %I', name);
END $$;
ALTER TABLE trace_spans ADD CONSTRAINT trace_spans_workspace_id_fk_cascade
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;
"""

BACKWARD = """
ALTER TABLE trace_spans DROP CONSTRAINT trace_spans_workspace_id_fk_cascade;
ALTER TABLE trace_spans ADD CONSTRAINT trace_spans_workspace_id_fk_workspaces_id
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) DEFERRABLE INITIALLY DEFERRED;
"""


class Migration(migrations.Migration):
    dependencies = [("traces", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
