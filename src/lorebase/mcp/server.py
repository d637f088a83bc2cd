"""`build_server`: the MCP server (official SDK, `MCPServer`) with every tool registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer

from lorebase import __version__
from lorebase.mcp.runtime import CallerResolver, ResolverLifespan
from lorebase.mcp.tools import TOOLS

INSTRUCTIONS = (
    "Lorebase is your durable memory. Projects hold knowledge (ingest text or web pages, then "
    "query_knowledge for cited passages) and tasks (what you are doing). Ingestion is "
    "asynchronous: poll get_job until status is 'succeeded' before querying. Failures come back "
    "as tool errors whose JSON has status, title and detail."
)


def build_server(lifespan: ResolverLifespan) -> MCPServer[CallerResolver]:
    """An MCP server whose tools find their caller through the resolver `lifespan` yields."""

    @asynccontextmanager
    async def server_lifespan(_: MCPServer[CallerResolver]) -> AsyncIterator[CallerResolver]:
        async with lifespan() as resolver:
            yield resolver

    server: MCPServer[CallerResolver] = MCPServer(
        name="lorebase",
        title="Lorebase",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=server_lifespan,
    )
    for tool, hints in TOOLS:
        server.add_tool(tool, annotations=hints, structured_output=True)
    return server
