"""The facematch service: HTTP API, persistence and workflow. Uses matcher, index and auth."""
