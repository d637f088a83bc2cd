"""Initial schema: users, auth, projects, documents, knowledge, tasks, jobs, queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# HNSW indexes exist per embedding dimension (partial, on a cast of the untyped column), so
# any model fits the one `embedding` column without runtime DDL. pgvector indexes `vector` up
# to 2000 dimensions and `halfvec` up to 4000; other dimensions are searched exactly.
VECTOR_DIMS = (384, 512, 768, 1024, 1536)
HALFVEC_DIMS = (3072,)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE users (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    username text NOT NULL,
    email text,
    password_hash text NOT NULL,
    is_admin boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_users PRIMARY KEY (id),
    CONSTRAINT ck_users_username_length CHECK (char_length(username) BETWEEN 3 AND 64)
);
CREATE UNIQUE INDEX uq_users_username ON users (lower(username));

CREATE TABLE refresh_tokens (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    family_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_refresh_tokens PRIMARY KEY (id),
    CONSTRAINT fk_refresh_tokens_user_id_users FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_refresh_tokens_family_id ON refresh_tokens (family_id);

CREATE TABLE projects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text,
    status text NOT NULL DEFAULT 'active',
    tags text[] NOT NULL DEFAULT '{}',
    parent_id uuid,
    owner_id uuid NOT NULL,
    text_search_config regconfig NOT NULL DEFAULT 'english',
    settings jsonb NOT NULL DEFAULT '{}',
    embedding_model text,
    embedding_dim integer,
    corpus_generation bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_projects PRIMARY KEY (id),
    CONSTRAINT ck_projects_status CHECK (status IN ('active', 'archived')),
    CONSTRAINT fk_projects_parent_id_projects FOREIGN KEY (parent_id)
        REFERENCES projects (id) ON DELETE RESTRICT,
    CONSTRAINT fk_projects_owner_id_users FOREIGN KEY (owner_id)
        REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_projects_owner_id ON projects (owner_id);
CREATE INDEX ix_projects_parent_id ON projects (parent_id);
CREATE INDEX ix_projects_tags ON projects USING gin (tags);

CREATE TABLE project_members (
    project_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_project_members PRIMARY KEY (project_id, user_id),
    CONSTRAINT ck_project_members_role CHECK (role IN ('owner', 'editor', 'viewer')),
    CONSTRAINT fk_project_members_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_project_members_user_id_users FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX ix_project_members_user_id ON project_members (user_id);

CREATE TABLE api_keys (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL,
    key_hash text NOT NULL,
    scopes text[] NOT NULL,
    project_id uuid,
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_api_keys PRIMARY KEY (id),
    CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash),
    CONSTRAINT ck_api_keys_scopes CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[]),
    CONSTRAINT fk_api_keys_user_id_users FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_api_keys_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE
);
CREATE INDEX ix_api_keys_user_id ON api_keys (user_id);

CREATE TABLE documents (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    name text NOT NULL,
    type text NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending',
    version text NOT NULL DEFAULT '1.0.0',
    content_hash text NOT NULL,
    source_uri text,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_documents PRIMARY KEY (id),
    CONSTRAINT ck_documents_status CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    CONSTRAINT fk_documents_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_documents_created_by_users FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX ix_documents_project_id_name ON documents (project_id, name);
CREATE INDEX ix_documents_project_id_content_hash ON documents (project_id, content_hash);
CREATE INDEX ix_documents_source_uri ON documents (project_id, source_uri);

CREATE TABLE document_versions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    document_id uuid NOT NULL,
    version text NOT NULL,
    major integer NOT NULL,
    minor integer NOT NULL,
    patch integer NOT NULL,
    content text,
    raw bytea,
    mime_type text,
    content_hash text NOT NULL,
    size_bytes bigint NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_document_versions PRIMARY KEY (id),
    CONSTRAINT uq_document_versions_document_id_version UNIQUE (document_id, major, minor, patch),
    CONSTRAINT fk_document_versions_document_id_documents FOREIGN KEY (document_id)
        REFERENCES documents (id) ON DELETE CASCADE
);

CREATE TABLE knowledge_items (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    document_id uuid NOT NULL,
    document_version_id uuid NOT NULL,
    chunk_index integer NOT NULL,
    chunk_text text NOT NULL,
    content_hash text NOT NULL,
    embedding vector NOT NULL,
    embedding_model text NOT NULL,
    embedding_dim integer NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    ts_config regconfig NOT NULL DEFAULT 'english',
    tsv tsvector GENERATED ALWAYS AS (to_tsvector(ts_config, chunk_text)) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_knowledge_items PRIMARY KEY (id),
    CONSTRAINT uq_knowledge_items_version_chunk
        UNIQUE (document_version_id, embedding_model, chunk_index),
    CONSTRAINT fk_knowledge_items_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_knowledge_items_document_id_documents FOREIGN KEY (document_id)
        REFERENCES documents (id) ON DELETE CASCADE,
    CONSTRAINT fk_knowledge_items_document_version_id_document_versions
        FOREIGN KEY (document_version_id) REFERENCES document_versions (id) ON DELETE CASCADE
);
CREATE INDEX ix_knowledge_items_project_id_model ON knowledge_items (project_id, embedding_model);
CREATE INDEX ix_knowledge_items_document_id ON knowledge_items (document_id);
CREATE INDEX ix_knowledge_items_tsv ON knowledge_items USING gin (tsv);
CREATE INDEX ix_knowledge_items_metadata ON knowledge_items USING gin (metadata jsonb_path_ops);

CREATE TABLE embedding_cache (
    provider text NOT NULL,
    model text NOT NULL,
    text_sha256 text NOT NULL,
    dim integer NOT NULL,
    embedding vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_embedding_cache PRIMARY KEY (provider, model, text_sha256)
);

CREATE TABLE chunk_contexts (
    model text NOT NULL,
    document_sha256 text NOT NULL,
    chunk_sha256 text NOT NULL,
    context text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_chunk_contexts PRIMARY KEY (model, document_sha256, chunk_sha256)
);

CREATE TABLE tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    title text NOT NULL,
    description text,
    status text NOT NULL DEFAULT 'todo',
    priority text NOT NULL DEFAULT 'medium',
    assignee text,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_tasks PRIMARY KEY (id),
    CONSTRAINT ck_tasks_status CHECK (status IN ('todo', 'in_progress', 'done', 'blocked')),
    CONSTRAINT ck_tasks_priority CHECK (priority IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT fk_tasks_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_tasks_created_by_users FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX ix_tasks_project_id_status ON tasks (project_id, status);
CREATE INDEX ix_tasks_project_id_assignee ON tasks (project_id, assignee);

CREATE TABLE task_dependencies (
    task_id uuid NOT NULL,
    depends_on_id uuid NOT NULL,
    CONSTRAINT pk_task_dependencies PRIMARY KEY (task_id, depends_on_id),
    CONSTRAINT ck_task_dependencies_not_self CHECK (task_id <> depends_on_id),
    CONSTRAINT fk_task_dependencies_task_id_tasks FOREIGN KEY (task_id)
        REFERENCES tasks (id) ON DELETE CASCADE,
    CONSTRAINT fk_task_dependencies_depends_on_id_tasks FOREIGN KEY (depends_on_id)
        REFERENCES tasks (id) ON DELETE CASCADE
);
CREATE INDEX ix_task_dependencies_depends_on_id ON task_dependencies (depends_on_id);

CREATE TABLE jobs (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    stage text,
    progress_done integer NOT NULL DEFAULT 0,
    progress_total integer NOT NULL DEFAULT 0,
    error text,
    document_ids uuid[] NOT NULL DEFAULT '{}',
    payload jsonb NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    heartbeat_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT pk_jobs PRIMARY KEY (id),
    CONSTRAINT ck_jobs_status
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT fk_jobs_project_id_projects FOREIGN KEY (project_id)
        REFERENCES projects (id) ON DELETE CASCADE,
    CONSTRAINT fk_jobs_created_by_users FOREIGN KEY (created_by)
        REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX ix_jobs_project_id ON jobs (project_id);
CREATE INDEX ix_jobs_status ON jobs (status) WHERE status IN ('queued', 'running');
"""


def _vector_indexes() -> str:
    statements = [
        f"CREATE INDEX ix_knowledge_items_embedding_{dim} ON knowledge_items "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
        f"WITH (m = 16, ef_construction = 64) WHERE embedding_dim = {dim};"
        for dim in VECTOR_DIMS
    ]
    statements += [
        f"CREATE INDEX ix_knowledge_items_embedding_{dim} ON knowledge_items "
        f"USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) "
        f"WITH (m = 16, ef_construction = 64) WHERE embedding_dim = {dim};"
        for dim in HALFVEC_DIMS
    ]
    return "\n".join(statements)


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(_vector_indexes())


def downgrade() -> None:
    for table in (
        "jobs",
        "task_dependencies",
        "tasks",
        "chunk_contexts",
        "embedding_cache",
        "knowledge_items",
        "document_versions",
        "documents",
        "api_keys",
        "project_members",
        "projects",
        "refresh_tokens",
        "users",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
