"""The SPEC's MCP tools. Each one parses its arguments, calls ONE service function (the same
one the matching REST route calls) with the caller's Principal, and returns that route's JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from lorebase.answering import service as answering
from lorebase.documents import service as documents
from lorebase.documents.schemas import DocumentFilter, DocumentRead
from lorebase.knowledge import service as knowledge
from lorebase.knowledge import sources_service as sources
from lorebase.knowledge.schemas import (
    CrawlCreate,
    IngestAccepted,
    JobAccepted,
    JobRead,
    TextIngest,
)
from lorebase.knowledge.source_schemas import SourceRead
from lorebase.mcp.runtime import Caller, invoke
from lorebase.paging import DEFAULT_LIMIT, Limit, Page, PageRequest, Skip
from lorebase.projects import service as projects
from lorebase.projects.schemas import ProjectCreate, ProjectListed, ProjectRead
from lorebase.ratelimit import Bucket, enforce_limit
from lorebase.retrieval.schemas import QueryCreate, QueryFilters, QueryRead
from lorebase.tasks import service as tasks
from lorebase.tasks.schemas import (
    TaskCreate,
    TaskFilter,
    TaskPriority,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
FETCHES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

ProjectId = Annotated[UUID, Field(description="The project's id.")]
TaskId = Annotated[UUID, Field(description="The task's id.")]
DocumentId = Annotated[UUID, Field(description="The document's id.")]
JobId = Annotated[UUID, Field(description="The job's id (from ingest_text or ingest_url).")]
_CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")


def bounds(model: type[BaseModel], name: str, description: str | None = None) -> FieldInfo:
    """A tool argument's `Field`: the constraints the REST schema `model` declares for `name`
    (so both transports refuse the same input), with an MCP-facing description."""
    constraints: dict[str, Any] = {}
    for item in model.model_fields[name].metadata:
        for attr in _CONSTRAINTS:
            if (value := getattr(item, attr, None)) is not None:
                constraints[attr] = value
    info: FieldInfo = Field(description=description, **constraints)
    return info


TaskIds = Annotated[
    list[UUID] | None,
    bounds(TaskCreate, "dependencies", "Ids of tasks (same project) that must be done first."),
]
Tags = Annotated[
    list[str] | None, bounds(ProjectCreate, "tags", "Free-form labels, 1-64 characters each.")
]


async def list_projects(
    ctx: Context, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
) -> Annotated[CallToolResult, Page[ProjectListed]]:
    """List the projects you are a member of (every project for an admin), with your role."""

    async def run(caller: Caller) -> Page[ProjectListed]:
        return await projects.list_projects(
            ctx=caller.ctx, principal=caller.principal, page=PageRequest(skip, limit)
        )

    return await invoke(ctx, "list_projects", run)


async def create_project(
    ctx: Context,
    name: Annotated[str, bounds(ProjectCreate, "name", "Project name.")],
    description: Annotated[
        str | None, bounds(ProjectCreate, "description", "What the project is about.")
    ] = None,
    tags: Tags = None,
) -> Annotated[CallToolResult, ProjectRead]:
    """Create a project you own: a knowledge base plus tasks for one body of work."""

    async def run(caller: Caller) -> ProjectRead:
        data = ProjectCreate(name=name, description=description, tags=tags or [])
        async with caller.ctx.db.transaction() as conn:
            return await projects.create_project(conn, principal=caller.principal, data=data)

    return await invoke(ctx, "create_project", run)


async def _limit(caller: Caller, bucket: Bucket) -> None:
    """The REST routes' rate limits, in the same per-user/per-key buckets."""
    await enforce_limit(
        caller.ctx.cache, caller.ctx.settings, bucket=bucket, who=caller.principal.rate_key
    )


async def ingest_text(
    ctx: Context,
    project_id: ProjectId,
    name: Annotated[
        str,
        bounds(
            TextIngest, "name", "Document name; its extension picks the format (default Markdown)."
        ),
    ],
    text: Annotated[str, bounds(TextIngest, "text", "The content to remember.")],
    tags: Tags = None,
) -> Annotated[CallToolResult, IngestAccepted]:
    """Store a text as a document and index it in the background. Returns {document_id, job_id,
    status}: poll get_job(job_id) until `succeeded` before querying. The same name again adds a
    new version; identical content already in the project is not indexed twice (job_id null)."""

    async def run(caller: Caller) -> IngestAccepted:
        await _limit(caller, "ingest")
        return await knowledge.ingest_text(
            ctx=caller.ctx,
            principal=caller.principal,
            project_id=project_id,
            name=name,
            text=text,
            tags=tags,
        )

    return await invoke(ctx, "ingest_text", run)


async def ingest_url(
    ctx: Context,
    project_id: ProjectId,
    url: Annotated[str, bounds(CrawlCreate, "url", "http(s) start page.")],
    max_depth: Annotated[
        int, bounds(CrawlCreate, "max_depth", "Links to follow from the start page; 0: only it.")
    ] = 0,
    max_pages: Annotated[
        int | None, bounds(CrawlCreate, "max_pages", "Stop after this many pages.")
    ] = None,
) -> Annotated[CallToolResult, JobAccepted]:
    """Crawl a web page (and, with max_depth, the pages it links to on the same site) into the
    project in the background; returns {job_id}: poll get_job. Private addresses are refused."""

    async def run(caller: Caller) -> JobAccepted:
        data = CrawlCreate(project_id=project_id, url=url, max_depth=max_depth, max_pages=max_pages)
        await _limit(caller, "ingest")
        return await knowledge.submit_crawl(ctx=caller.ctx, principal=caller.principal, data=data)

    return await invoke(ctx, "ingest_url", run)


async def get_job(ctx: Context, job_id: JobId) -> Annotated[CallToolResult, JobRead]:
    """An ingestion job: status (queued, running, succeeded, failed, cancelled), progress,
    error and the documents it produced."""

    async def run(caller: Caller) -> JobRead:
        return await knowledge.get_job(ctx=caller.ctx, principal=caller.principal, job_id=job_id)

    return await invoke(ctx, "get_job", run)


async def list_sources(
    ctx: Context, project_id: ProjectId, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
) -> Annotated[CallToolResult, Page[SourceRead]]:
    """List a project's crawl and git sources: status, last and next sync, document counts."""

    async def run(caller: Caller) -> Page[SourceRead]:
        items, total = await sources.list_sources(
            ctx=caller.ctx,
            principal=caller.principal,
            project_id=project_id,
            skip=skip,
            limit=limit,
        )
        return Page[SourceRead](items=items, total=total, skip=skip, limit=limit)

    return await invoke(ctx, "list_sources", run)


async def sync_source(
    ctx: Context, source_id: Annotated[UUID, Field(description="The source's id.")]
) -> Annotated[CallToolResult, JobAccepted]:
    """Re-sync a source now (changed pages become new versions); returns {job_id}: poll get_job.
    A 409 error while a sync of it is already queued or running."""

    async def run(caller: Caller) -> JobAccepted:
        await _limit(caller, "ingest")
        return await sources.sync_source(
            ctx=caller.ctx, principal=caller.principal, source_id=source_id
        )

    return await invoke(ctx, "sync_source", run)


async def list_documents(
    ctx: Context, project_id: ProjectId, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
) -> Annotated[CallToolResult, Page[DocumentRead]]:
    """List a project's documents, newest first (without their content)."""

    async def run(caller: Caller) -> Page[DocumentRead]:
        return await documents.list_documents(
            ctx=caller.ctx,
            principal=caller.principal,
            filters=DocumentFilter(project_id),
            page=PageRequest(skip, limit),
        )

    return await invoke(ctx, "list_documents", run)


async def get_document(
    ctx: Context,
    document_id: DocumentId,
    version: Annotated[
        str | None, Field(description="A version like 1.2.0; default the latest.")
    ] = None,
) -> Annotated[CallToolResult, DocumentRead]:
    """A document with its content (the latest version unless `version` is given)."""

    async def run(caller: Caller) -> DocumentRead:
        return await documents.get_document(
            ctx=caller.ctx, principal=caller.principal, document_id=document_id, version=version
        )

    return await invoke(ctx, "get_document", run)


async def query_knowledge(
    ctx: Context,
    project_id: ProjectId,
    query_text: Annotated[str, bounds(QueryCreate, "query_text", "A question or keywords.")],
    top_k: Annotated[int | None, bounds(QueryCreate, "top_k", "Passages to return.")] = None,
    use_hybrid_search: Annotated[
        bool | None, Field(description="Add full-text search to vector search.")
    ] = None,
    use_re_ranking: Annotated[
        bool | None, Field(description="Re-rank the candidates before cutting to top_k.")
    ] = None,
    use_agentic_rag: Annotated[
        bool | None, Field(description="Also synthesize an answer with citations.")
    ] = None,
    filters: Annotated[
        QueryFilters | None,
        Field(description="Only passages of these document_ids / tags / types."),
    ] = None,
) -> Annotated[CallToolResult, QueryRead]:
    """Search a project's knowledge: the most relevant passages (with document, version and
    scores) and, with use_agentic_rag, an answer citing them. Unset flags use the defaults."""

    async def run(caller: Caller) -> QueryRead:
        query = QueryCreate(
            project_id=project_id,
            query_text=query_text,
            top_k=top_k,
            use_hybrid_search=use_hybrid_search,
            use_re_ranking=use_re_ranking,
            use_agentic_rag=use_agentic_rag,
            filters=filters,
        )
        await _limit(caller, "query")
        return await answering.run_query(ctx=caller.ctx, principal=caller.principal, query=query)

    return await invoke(ctx, "query_knowledge", run)


def _sent_arguments(ctx: Context) -> set[str]:
    """Argument names the client actually sent, so a partial update can tell "leave as is"
    (absent) from "clear" (null), as the REST PUT does."""
    params = ctx.request_context.params or {}
    arguments = params.get("arguments")
    return set(arguments) if isinstance(arguments, dict) else set()


async def list_tasks(
    ctx: Context,
    project_id: ProjectId,
    status: Annotated[TaskStatus | None, Field(description="Only tasks in this status.")] = None,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> Annotated[CallToolResult, Page[TaskRead]]:
    """List a project's tasks, optionally only those in one status."""

    async def run(caller: Caller) -> Page[TaskRead]:
        return await tasks.list_tasks(
            ctx=caller.ctx,
            principal=caller.principal,
            filters=TaskFilter(project_id, status=status),
            page=PageRequest(skip, limit),
        )

    return await invoke(ctx, "list_tasks", run)


async def create_task(
    ctx: Context,
    project_id: ProjectId,
    title: Annotated[str, bounds(TaskCreate, "title", "What to do.")],
    description: Annotated[str | None, bounds(TaskCreate, "description", "Details.")] = None,
    priority: Annotated[TaskPriority, Field(description="How urgent it is.")] = "medium",
    dependencies: TaskIds = None,
) -> Annotated[CallToolResult, TaskRead]:
    """Create a task (status `todo`) in a project; dependencies must be acyclic."""

    async def run(caller: Caller) -> TaskRead:
        data = TaskCreate(
            project_id=project_id,
            title=title,
            description=description,
            priority=priority,
            dependencies=dependencies or [],
        )
        async with caller.ctx.db.transaction() as conn:
            return await tasks.create_task(conn, principal=caller.principal, data=data)

    return await invoke(ctx, "create_task", run)


async def update_task(
    ctx: Context,
    task_id: TaskId,
    title: Annotated[str | None, bounds(TaskUpdate, "title")] = None,
    description: Annotated[
        str | None, bounds(TaskUpdate, "description", "Send null to clear.")
    ] = None,
    status: Annotated[
        TaskStatus | None, Field(description="`done` needs every dependency done.")
    ] = None,
    priority: TaskPriority | None = None,
    assignee: Annotated[str | None, bounds(TaskUpdate, "assignee", "Send null to clear.")] = None,
    dependencies: Annotated[
        list[UUID] | None, bounds(TaskUpdate, "dependencies", "Replaces the whole set.")
    ] = None,
) -> Annotated[CallToolResult, TaskRead]:
    """Change a task: only the arguments you send change (null clears description/assignee)."""
    values: dict[str, Any] = {
        "title": title,
        "description": description,
        "status": status,
        "priority": priority,
        "assignee": assignee,
        "dependencies": dependencies,
    }
    sent = _sent_arguments(ctx)
    changes = {name: value for name, value in values.items() if name in sent}

    async def run(caller: Caller) -> TaskRead:
        data = TaskUpdate.model_validate(changes)
        async with caller.ctx.db.transaction() as conn:
            return await tasks.update_task(
                conn, principal=caller.principal, task_id=task_id, data=data
            )

    return await invoke(ctx, "update_task", run)


TOOLS: list[tuple[Callable[..., Awaitable[CallToolResult]], ToolAnnotations]] = [
    (list_projects, READ_ONLY),
    (create_project, WRITES),
    (ingest_text, WRITES),
    (ingest_url, FETCHES),
    (get_job, READ_ONLY),
    (list_sources, READ_ONLY),
    (sync_source, FETCHES),
    (query_knowledge, READ_ONLY),
    (list_documents, READ_ONLY),
    (get_document, READ_ONLY),
    (list_tasks, READ_ONLY),
    (create_task, WRITES),
    (update_task, WRITES),
]
