"""The web console at `/`: HTML shells and static assets; the browser talks to `/api/v1`."""
