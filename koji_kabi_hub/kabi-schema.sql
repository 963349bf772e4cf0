-- koji-kabi: rebuild claims in the hub's database (the kabi_hub plugin's one table).
--
-- Apply once, as the database owner, like Koji's own schema upgrade scripts:
--     psql koji koji < /usr/share/koji-kabi/kabi-schema.sql
-- The hub plugin refuses to submit rebuilds (one clear error) until it is there.
--
-- A claim is one rebuild of a kmod package for a kABI fingerprint (claim_key =
-- sha256(package + fingerprint)), made by a kabiCheck task (check_task_id) together with
-- its build subtask (task_id) in one transaction.  At most one claim per key is live
-- (active): a second claim of the same key is impossible, whatever the number of hub
-- hosts.  A cancelled rebuild, or one that failed for another kmod build or kernel, is
-- deactivated by the next check, which may claim the key again; the old rows stay as
-- history.  When a rebuild ends it is judged against its kernel (outcome: fixed, still
-- broken, build failed, canceled), by a kabiJudge task for a finished build.
--
-- A hub that has the first version of this table: apply kabi-schema-upgrade.sql.

BEGIN;

CREATE TABLE kabi_rebuild (
    id SERIAL PRIMARY KEY,
    claim_key TEXT NOT NULL CHECK (claim_key ~ '^[0-9a-f]{64}$'),
    package TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    nvr TEXT NOT NULL,
    kernel TEXT NOT NULL,
    check_task_id INTEGER NOT NULL REFERENCES task (id),
    task_id INTEGER NOT NULL REFERENCES task (id),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    create_ts TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    strategy TEXT NOT NULL DEFAULT 'buildroot',
    side_tag_id INTEGER,
    judge_task_id INTEGER REFERENCES task (id),
    result_build_id INTEGER REFERENCES build (id),
    outcome TEXT CHECK (outcome IN ('fixed', 'still broken', 'build failed', 'canceled')),
    outcome_detail TEXT,
    outcome_ts TIMESTAMPTZ
) WITHOUT OIDS;

CREATE UNIQUE INDEX kabi_rebuild_live ON kabi_rebuild (claim_key) WHERE active;
CREATE INDEX kabi_rebuild_check_task ON kabi_rebuild (check_task_id);
CREATE INDEX kabi_rebuild_task ON kabi_rebuild (task_id);
CREATE INDEX kabi_rebuild_kernel ON kabi_rebuild (kernel);

-- serialises claimers (kojihub.db.db_lock), so max_in_flight is counted exactly
INSERT INTO locks (name) VALUES ('kabi-rebuild');

COMMIT;
