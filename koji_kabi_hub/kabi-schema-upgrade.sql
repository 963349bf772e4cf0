-- koji-kabi: bring a kabi_rebuild table made by the first kabi-schema.sql up to date
-- (rebuild strategies and outcomes).  Safe to apply more than once:
--     psql koji koji < /usr/share/koji-kabi/kabi-schema-upgrade.sql

BEGIN;

ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS strategy TEXT NOT NULL DEFAULT 'buildroot';
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS side_tag_id INTEGER;
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS judge_task_id INTEGER REFERENCES task (id);
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS result_build_id INTEGER REFERENCES build (id);
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS outcome TEXT
    CHECK (outcome IN ('fixed', 'still broken', 'build failed', 'canceled'));
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS outcome_detail TEXT;
ALTER TABLE kabi_rebuild ADD COLUMN IF NOT EXISTS outcome_ts TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS kabi_rebuild_task ON kabi_rebuild (task_id);
CREATE INDEX IF NOT EXISTS kabi_rebuild_kernel ON kabi_rebuild (kernel);

COMMIT;
