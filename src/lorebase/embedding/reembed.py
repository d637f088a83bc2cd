"""Moving a project to a new embedding space, resumably, while the old one keeps serving.

New vectors are written as new knowledge_items rows of the new model beside the old ones
(the unique key is (document_version_id, embedding_model, chunk_index)), so queries in the
old space are untouched until every item has its counterpart. Then, in one transaction with
the project row locked, the project's space switches, the old rows go and the corpus
generation is bumped. Interrupted, a run resumes where it stopped: items that already have
a new-space row are skipped (and their texts are in the embedding cache anyway)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lorebase.db import Database
from lorebase.embedding import repository
from lorebase.embedding.service import embed_texts, embedding_input
from lorebase.errors import Conflict, NotFound
from lorebase.providers.base import Embedder

Progress = Callable[[int, int], None]
# Items that arrive while we work (ingestion in the old space) are picked up by another pass.
MAX_PASSES = 5


@dataclass(frozen=True)
class ReembedResult:
    """What a re-embed did: `embedded` new rows, `deleted` old rows, whether it `switched`."""

    project_id: uuid.UUID
    from_model: str | None
    to_model: str
    embedded: int
    deleted: int
    switched: bool


async def reembed_project(
    *,
    db: Database,
    project_id: uuid.UUID,
    embedder: Embedder,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> ReembedResult:
    """Embed every item of the project's current space with `embedder`, then switch."""
    async with db.connection() as conn:
        space = await repository.get_space(conn, project_id=project_id)
    if not space:
        raise NotFound(f"project {project_id} does not exist")
    old = space["embedding_model"]
    new, dim = embedder.model_id, embedder.dimension
    if old is None or (old == new and space["embedding_dim"] == dim):
        async with db.transaction() as conn:
            await repository.claim_space(conn, project_id=project_id, model=new, dim=dim)
        return ReembedResult(project_id, old, new, 0, 0, switched=old is None)
    if old == new:
        raise Conflict(
            f"the project is embedded with {old!r} at {space['embedding_dim']} dimensions and "
            f"the configured model has the same name at {dim}: give the new space its own "
            "model id (EMBEDDING_DIMENSIONS names it model@dim for shortened OpenAI vectors)"
        )

    async with db.connection() as conn:
        total = await repository.count_items(conn, project_id=project_id, model=old)
        done = total - await repository.count_missing(conn, project_id=project_id, old=old, new=new)
    if progress:
        progress(done, total)
    embedded = 0
    for _ in range(MAX_PASSES):
        while True:
            async with db.connection() as conn:
                items = await repository.list_missing(
                    conn, project_id=project_id, old=old, new=new, limit=batch_size
                )
            if not items:
                break
            vectors = await embed_texts(
                db=db,
                embedder=embedder,
                texts=[embedding_input(i["chunk_text"], i["metadata"]) for i in items],
            )
            async with db.transaction() as conn:
                await repository.insert_items(
                    conn, items=items, vectors=vectors, model=new, dim=dim
                )
            embedded += len(items)
            done += len(items)
            if progress:
                progress(done, max(total, done))
        async with db.transaction() as conn:
            current = await repository.get_space(conn, project_id=project_id, lock=True)
            if current.get("embedding_model") != old:
                raise Conflict(
                    f"the project's embedding space changed to {current.get('embedding_model')!r}"
                    " while re-embedding; run the re-embed again"
                )
            if await repository.count_missing(conn, project_id=project_id, old=old, new=new):
                continue  # new items arrived in the old space: another pass
            deleted = await repository.switch_space(conn, project_id=project_id, model=new, dim=dim)
            return ReembedResult(project_id, old, new, embedded, deleted, switched=True)
    raise Conflict(
        "knowledge keeps arriving in the old embedding space; pause ingestion and re-run"
    )
