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
    run = _Run(db, project_id, embedder, old, batch_size, progress, total, done)
    for _ in range(MAX_PASSES):
        await run.embed_missing()
        deleted = await run.switch_if_complete()
        if deleted is not None:
            return ReembedResult(project_id, old, new, run.embedded, deleted, switched=True)
    raise Conflict(
        "knowledge keeps arriving in the old embedding space; pause ingestion and re-run"
    )


@dataclass
class _Run:
    """One re-embed from `old` to the embedder's space, counting what it embedded."""

    db: Database
    project_id: uuid.UUID
    embedder: Embedder
    old: str
    batch_size: int
    progress: Progress | None
    total: int
    done: int
    embedded: int = 0

    async def embed_missing(self) -> None:
        """Embed, batch by batch, every old-space item that has no new-space row yet."""
        new, dim = self.embedder.model_id, self.embedder.dimension
        while True:
            async with self.db.connection() as conn:
                items = await repository.list_missing(
                    conn, project_id=self.project_id, old=self.old, new=new, limit=self.batch_size
                )
            if not items:
                return
            vectors = await embed_texts(
                db=self.db,
                embedder=self.embedder,
                texts=[embedding_input(i["chunk_text"], i["metadata"]) for i in items],
            )
            async with self.db.transaction() as conn:
                await repository.insert_items(
                    conn, items=items, vectors=vectors, model=new, dim=dim
                )
            self.embedded += len(items)
            self.done += len(items)
            if self.progress:
                self.progress(self.done, max(self.total, self.done))

    async def switch_if_complete(self) -> int | None:
        """Switch the project's space (returns the old rows deleted), or None when new items
        arrived in the old space meanwhile: another pass."""
        new, dim = self.embedder.model_id, self.embedder.dimension
        async with self.db.transaction() as conn:
            current = await repository.get_space(conn, project_id=self.project_id, lock=True)
            if current.get("embedding_model") != self.old:
                raise Conflict(
                    f"the project's embedding space changed to {current.get('embedding_model')!r}"
                    " while re-embedding; run the re-embed again"
                )
            missing = await repository.count_missing(
                conn, project_id=self.project_id, old=self.old, new=new
            )
            if missing:
                return None
            return await repository.switch_space(
                conn, project_id=self.project_id, model=new, dim=dim
            )
