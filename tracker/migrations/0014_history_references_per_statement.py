"""On PostgreSQL, the history's references to its member and torrent are checked once per
statement instead of once per row (issue 17).

A foreign key checks every inserted row with its own query (``SELECT 1 ... FOR KEY SHARE``):
two per new history row, about 7 us of the database's CPU per fresh (member, torrent) pair at
the statistics flush's 24,000-row batches, 40 % of the row's cost (bench/stats_pipeline.py).
The two foreign keys of ``tracker_torrenthistory`` are replaced by triggers that keep their
meaning:

- an INSERT statement's new rows must reference existing members and torrents, which are
  locked FOR KEY SHARE until the transaction ends, as the foreign key's check locks them (one
  query per table and statement, over the statement's rows);
- an UPDATE that changes a row's member or torrent is checked the same way, per row;
- deleting a member or torrent (or changing its id) that history rows still reference fails at
  commit, as the foreign keys (DEFERRABLE INITIALLY DEFERRED) did: Django's cascade deletes the
  history rows first, as before;
- TRUNCATE of members or torrents fails while history rows remain (a foreign key refuses it).

A violation raises SQLSTATE 23503 (``foreign_key_violation``: Django's ``IntegrityError``).
Other databases (the embedded default's SQLite) keep the foreign keys: this migration changes
nothing there, and the models still declare both keys.
"""

from django.db import migrations

_REFERENCES = """
CREATE FUNCTION tracker_history_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  found bigint;
  wanted bigint;
BEGIN
  -- Each referenced row must exist; it stays locked FOR KEY SHARE until this transaction ends,
  -- so a concurrent delete waits for it and then fails (tracker_history_referenced).
  SELECT count(*) INTO found FROM (SELECT 1 FROM tracker_member m
    WHERE m.id IN (SELECT member_id FROM new_rows) FOR KEY SHARE OF m) locked;
  SELECT count(DISTINCT member_id) INTO wanted FROM new_rows;
  IF found <> wanted THEN
    RAISE foreign_key_violation USING MESSAGE = 'insert or update on table'
      ' "tracker_torrenthistory" references a member that does not exist';
  END IF;
  SELECT count(*) INTO found FROM (SELECT 1 FROM tracker_torrent t
    WHERE t.id IN (SELECT torrent_id FROM new_rows) FOR KEY SHARE OF t) locked;
  SELECT count(DISTINCT torrent_id) INTO wanted FROM new_rows;
  IF found <> wanted THEN
    RAISE foreign_key_violation USING MESSAGE = 'insert or update on table'
      ' "tracker_torrenthistory" references a torrent that does not exist';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION tracker_history_references_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM tracker_member WHERE id = NEW.member_id FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING MESSAGE = 'update on table "tracker_torrenthistory"'
      ' references a member that does not exist';
  END IF;
  PERFORM 1 FROM tracker_torrent WHERE id = NEW.torrent_id FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING MESSAGE = 'update on table "tracker_torrenthistory"'
      ' references a torrent that does not exist';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION tracker_history_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  referenced boolean;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
    RETURN NULL;
  END IF;
  IF TG_TABLE_NAME = 'tracker_member' THEN
    -- Re-inserted under the same id in this transaction: still referenced rightly.
    IF EXISTS (SELECT 1 FROM tracker_member WHERE id = OLD.id) THEN RETURN NULL; END IF;
    SELECT EXISTS (SELECT 1 FROM tracker_torrenthistory WHERE member_id = OLD.id)
      INTO referenced;
  ELSE
    IF EXISTS (SELECT 1 FROM tracker_torrent WHERE id = OLD.id) THEN RETURN NULL; END IF;
    SELECT EXISTS (SELECT 1 FROM tracker_torrenthistory WHERE torrent_id = OLD.id)
      INTO referenced;
  END IF;
  IF referenced THEN
    RAISE foreign_key_violation USING MESSAGE = format('%s %s on table "%s" is still'
      ' referenced from table "tracker_torrenthistory"', lower(TG_OP), OLD.id, TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION tracker_history_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM tracker_torrenthistory) THEN
    RAISE foreign_key_violation USING MESSAGE = format('cannot truncate "%s": table'
      ' "tracker_torrenthistory" references it', TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER tracker_history_references AFTER INSERT ON tracker_torrenthistory
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION tracker_history_references();
CREATE TRIGGER tracker_history_references_update
  AFTER UPDATE OF member_id, torrent_id ON tracker_torrenthistory FOR EACH ROW
  WHEN (OLD.member_id IS DISTINCT FROM NEW.member_id
        OR OLD.torrent_id IS DISTINCT FROM NEW.torrent_id)
  EXECUTE FUNCTION tracker_history_references_row();
CREATE CONSTRAINT TRIGGER tracker_member_history AFTER DELETE OR UPDATE OF id
  ON tracker_member DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION tracker_history_referenced();
CREATE CONSTRAINT TRIGGER tracker_torrent_history AFTER DELETE OR UPDATE OF id
  ON tracker_torrent DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION tracker_history_referenced();
CREATE TRIGGER tracker_member_history_truncate AFTER TRUNCATE ON tracker_member
  FOR EACH STATEMENT EXECUTE FUNCTION tracker_history_truncated();
CREATE TRIGGER tracker_torrent_history_truncate AFTER TRUNCATE ON tracker_torrent
  FOR EACH STATEMENT EXECUTE FUNCTION tracker_history_truncated();
"""

_DROP_REFERENCES = """
DROP TRIGGER tracker_history_references ON tracker_torrenthistory;
DROP TRIGGER tracker_history_references_update ON tracker_torrenthistory;
DROP TRIGGER tracker_member_history ON tracker_member;
DROP TRIGGER tracker_torrent_history ON tracker_torrent;
DROP TRIGGER tracker_member_history_truncate ON tracker_member;
DROP TRIGGER tracker_torrent_history_truncate ON tracker_torrent;
DROP FUNCTION tracker_history_references();
DROP FUNCTION tracker_history_references_row();
DROP FUNCTION tracker_history_referenced();
DROP FUNCTION tracker_history_truncated();
"""


def _history_foreign_keys(schema_editor) -> list[str]:
    """Names of the foreign keys of ``tracker_torrenthistory`` to members and torrents."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'tracker_torrenthistory'::regclass"
            " AND confrelid IN ('tracker_member'::regclass, 'tracker_torrent'::regclass)"
        )
        return [name for (name,) in cursor.fetchall()]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _history_foreign_keys(schema_editor):
        schema_editor.execute(
            f"ALTER TABLE tracker_torrenthistory DROP CONSTRAINT {schema_editor.quote_name(name)}"
        )
    schema_editor.execute(_REFERENCES, params=None)  # None: no placeholders ('%s' is format's)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(_DROP_REFERENCES, params=None)
    history = apps.get_model("tracker", "TorrentHistory")
    for name in ("member", "torrent"):
        field = history._meta.get_field(name)
        schema_editor.execute(
            schema_editor._create_fk_sql(history, field, "_fk_%(to_table)s_%(to_column)s")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0013_runtime_config"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
