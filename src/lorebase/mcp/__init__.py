"""MCP server: the SPEC tools over streamable HTTP (`/mcp`) and stdio (`lorebase mcp`).

Tools call the same services as the REST routes with the caller's Principal, so roles and
API-key scopes apply unchanged; failures come back as tool errors carrying problem details.
"""
