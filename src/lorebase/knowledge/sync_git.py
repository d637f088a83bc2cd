"""The git job: each repository file becomes a document version through
`upsert_source_document` (indexed inline, no job per file); the files that disappeared are
deleted. A re-sync of a source diffs from the commit the last sync stored: only added and
changed files are read and embedded (see `sources.git`)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from lorebase.content import TEXT_AS_IS, sha256
from lorebase.context import AppContext
from lorebase.documents import indexing as documents
from lorebase.knowledge import repository, sources_repository
from lorebase.knowledge.extract import ExtractionError
from lorebase.knowledge.pipeline import Source, SourceDocument, upsert_source_document
from lorebase.knowledge.sources import git
from lorebase.knowledge.sources.netguard import parse_networks
from lorebase.knowledge.sync_base import Counts, Tracker, source_id_of, source_items


def git_options(ctx: AppContext, payload: dict[str, Any]) -> git.GitOptions:
    settings = ctx.settings
    exclude = payload.get("exclude")
    return git.GitOptions(
        url=payload["url"],
        ref=payload.get("ref"),
        include=tuple(payload.get("include") or ()),
        exclude=tuple(exclude) if exclude is not None else git.DEFAULT_EXCLUDE,
        max_file_bytes=settings.git_max_file_bytes,
        max_files=settings.git_max_files,
        timeout_seconds=settings.git_timeout_seconds,
        allow_file=bool(payload.get("allow_file")),
        allowed_networks=parse_networks(settings.crawl_allow_private_networks),
    )


def selection_of(options: git.GitOptions) -> str:
    """What decides which files a sync reads: another selection cannot start from a diff."""
    chosen = [
        options.url,
        options.ref,
        options.include,
        options.exclude,
        options.max_file_bytes,
        options.max_files,
    ]
    return sha256(json.dumps(chosen))


async def previous_commit(
    ctx: AppContext, source_id: UUID | None, options: git.GitOptions
) -> tuple[str | None, str | None]:
    """The commit the last sync of this source stored, when it selected files the same way;
    else None and why every file is read."""
    if source_id is None:
        return None, "no source"
    async with ctx.db.connection() as conn:
        source = await sources_repository.get_source(conn, source_id=source_id)
    state = (source or {}).get("state") or {}
    commit = state.get("commit")
    if not isinstance(commit, str):
        return None, "first sync"
    if state.get("selection") != selection_of(options):
        return None, "the file selection changed"
    return commit, None


async def sync_repository(ctx: AppContext, row: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """A `git` job: index the new and changed files, then drop the ones that disappeared."""
    payload = row["payload"]
    options = git_options(ctx, payload)
    source_id = source_id_of(payload)
    items = await source_items(ctx, source_id)
    prefix = git.source_prefix(options.url)
    indexed = frozenset(
        uri.removeprefix(prefix)
        for uri, item in items.items()
        if uri.startswith(prefix) and item["document_status"] == "ready"
    )
    cache = None
    if source_id is not None:
        cache = git.cache_directory(ctx.settings.lorebase_data_dir, str(source_id))
    previous, why = await previous_commit(ctx, source_id, options)
    await tracker.advance("clone", total=1)
    checkout = await git.checkout_repository(
        options, cache=cache, previous=previous, indexed=indexed
    )
    await tracker.advance("clone", done=1)
    checkout.full_reason = why or checkout.full_reason
    counts = Counts()
    counts.add("unchanged", len(checkout.kept))
    await _index_files(ctx, row, options, checkout, source_id, counts, tracker)
    current = {git.source_uri(options.url, path) for path in checkout.selected}
    removed = await _remove_vanished(ctx, row["project_id"], prefix, current, source_id, items)
    counts.add("removed", removed)
    if source_id is not None:
        async with ctx.db.transaction() as conn:
            state = {"commit": checkout.commit, "selection": selection_of(options)}
            await sources_repository.set_state(conn, source_id=source_id, state=state)
    return {
        "commit": checkout.commit,
        "since": checkout.since,
        "full_sync": checkout.full_reason,
        "files": len(checkout.selected),
        "read": len(checkout.files),
        **counts.result(),
        "skipped": dict(list(checkout.skipped.items())[:100]),
    }


async def _index_files(
    ctx: AppContext,
    row: dict[str, Any],
    options: git.GitOptions,
    checkout: git.Checkout,
    source_id: UUID | None,
    counts: Counts,
    tracker: Tracker,
) -> None:
    tags = list(row["payload"].get("tags") or [])
    total = len(checkout.files)
    for number, file in enumerate(checkout.files):
        uri = git.source_uri(options.url, file.path)
        item = _file_item(row, options, checkout, file, uri=uri, tags=tags)
        try:
            document_id, outcome = await upsert_source_document(ctx, item=item, progress=tracker)
        except ExtractionError as exc:
            checkout.skipped[file.path] = str(exc)
            counts.add("errors")
        else:
            counts.add(outcome)
            async with ctx.db.transaction() as conn:
                await repository.add_job_documents(
                    conn, job_id=row["id"], document_ids=[document_id]
                )
                if source_id is not None:
                    await sources_repository.upsert_item(
                        conn,
                        source_id=source_id,
                        uri=uri,
                        document_id=document_id,
                        content_hash=item.content_hash,
                    )
        await tracker.set_overall(number + 1, total, stage="files")


async def _remove_vanished(
    ctx: AppContext,
    project_id: UUID,
    prefix: str,
    current: set[str],
    source_id: UUID | None,
    items: dict[str, dict[str, Any]],
) -> int:
    """Delete the repository's documents whose files are gone (or no longer selected)."""
    async with ctx.db.transaction() as conn:
        removed = await documents.delete_vanished(
            conn, project_id=project_id, source_prefix=prefix, keep=current
        )
        if source_id is not None:
            gone = [uri for uri in items if uri.startswith(prefix) and uri not in current]
            await sources_repository.delete_items(conn, source_id=source_id, uris=gone)
    return removed


def _file_item(
    row: dict[str, Any],
    options: git.GitOptions,
    checkout: git.Checkout,
    file: git.RepoFile,
    *,
    uri: str,
    tags: list[str],
) -> SourceDocument:
    file_type = file.file_type
    as_text = file_type.format in TEXT_AS_IS
    meta = {"source": file.path, "repository": options.url, "path": file.path}
    return SourceDocument(
        project_id=row["project_id"],
        source_uri=uri,
        name=file.path,
        type=file_type.format,
        source=Source(
            format=file_type.format,
            data=None if as_text else file.data,
            text=file_type.text if as_text else None,
            language=file_type.language,
            meta=meta,
        ),
        content_hash=sha256(file.data),
        size_bytes=len(file.data),
        mime_type=file_type.mime_type,
        tags=tags,
        metadata={
            "repository": options.url,
            "path": file.path,
            "ref": options.ref,
            "commit": checkout.commit,
        },
        created_by=row["created_by"],
    )
