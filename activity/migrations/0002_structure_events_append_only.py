"""Make structure_events append-only inside PostgreSQL, whatever client writes to it."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION structure_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'structure_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER structure_events_no_update_delete
    BEFORE UPDATE OR DELETE ON structure_events
    FOR EACH ROW EXECUTE FUNCTION structure_events_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS structure_events_no_update_delete ON structure_events;
DROP FUNCTION IF EXISTS structure_events_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("activity", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
