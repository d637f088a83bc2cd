"""Sources as a resource: a crawl or git source a project keeps in sync, and the state of each
page or file it brought in (for incremental re-syncs).

- `sources`: one row per (project, kind, uri); `settings` holds the crawl/git options of the
  request that created it, `state` what the last sync left (e.g. the git commit), and
  `sync_interval_seconds`/`next_sync_at` the schedule (the API enforces the minimum interval,
  SOURCE_MIN_SYNC_INTERVAL_SECONDS, 60 by default; the table only that it is positive).
- `source_items`: per page/file validators (`etag`, `last_modified`), the content hash, how many
  syncs in a row found it gone (`misses`) and whether it is retired from search.
- `documents.source_id` links a document to the source that wrote it; `retired` is a document
  status (kept with its versions, its chunks removed from search).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE sources (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    kind text NOT NULL,
    uri text NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}',
    state jsonb NOT NULL DEFAULT '{}',
    sync_interval_seconds integer,
    next_sync_at timestamptz,
    status text NOT NULL DEFAULT 'idle',
    last_job_id uuid,
    last_synced_at timestamptz,
    last_error text,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_sources PRIMARY KEY (id),
    CONSTRAINT uq_sources_project_id_kind_uri UNIQUE (project_id, kind, uri),
    CONSTRAINT ck_sources_kind CHECK (kind IN ('crawl', 'git')),
    CONSTRAINT ck_sources_status
        CHECK (status IN ('idle', 'queued', 'syncing', 'failed', 'deleting')),
    CONSTRAINT ck_sources_sync_interval
        CHECK (sync_interval_seconds IS NULL OR sync_interval_seconds >= 1),
    CONSTRAINT fk_sources_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_sources_created_by_users FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX ix_sources_next_sync_at ON sources (next_sync_at)
    WHERE next_sync_at IS NOT NULL;

CREATE TABLE source_items (
    source_id uuid NOT NULL,
    uri text NOT NULL,
    document_id uuid,
    etag text,
    last_modified text,
    content_hash text,
    misses integer NOT NULL DEFAULT 0,
    retired boolean NOT NULL DEFAULT false,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_source_items PRIMARY KEY (source_id, uri),
    CONSTRAINT fk_source_items_source_id_sources FOREIGN KEY (source_id)
        REFERENCES sources (id) ON DELETE CASCADE,
    CONSTRAINT fk_source_items_document_id_documents FOREIGN KEY (document_id)
        REFERENCES documents (id) ON DELETE SET NULL
);

ALTER TABLE documents ADD COLUMN source_id uuid;
ALTER TABLE documents ADD CONSTRAINT fk_documents_source_id_sources FOREIGN KEY (source_id)
    REFERENCES sources (id) ON DELETE SET NULL;
CREATE INDEX ix_documents_source_id ON documents (source_id) WHERE source_id IS NOT NULL;
ALTER TABLE documents DROP CONSTRAINT ck_documents_status;
ALTER TABLE documents ADD CONSTRAINT ck_documents_status
    CHECK (status IN ('pending', 'processing', 'ready', 'failed', 'retired'));
CREATE INDEX ix_jobs_project_id_kind_status ON jobs (project_id, kind, status);
"""


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    op.execute("""
        DROP INDEX IF EXISTS ix_jobs_project_id_kind_status;
        UPDATE documents SET status = 'ready' WHERE status = 'retired';
        ALTER TABLE documents DROP CONSTRAINT ck_documents_status;
        ALTER TABLE documents ADD CONSTRAINT ck_documents_status
            CHECK (status IN ('pending', 'processing', 'ready', 'failed'));
        ALTER TABLE documents DROP COLUMN IF EXISTS source_id;
        DROP TABLE IF EXISTS source_items;
        DROP TABLE IF EXISTS sources;
        """)
