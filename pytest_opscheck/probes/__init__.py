"""Probes: plain Python that knows nothing of pytest or of the sweep, in three layers.

`transport` talks to a kind of target with a deadline on every call (Docker engine, HTTP, PostgreSQL,
WebSocket, SMTP, TLS); `resource` is a target as the probes see it, opened once per sweep (compose file,
stack, database, site, auth session); `diagnosis` takes a resource and returns `result.Finding`s, one module
per runbook topic. Layers import downward only; heavy client libraries are imported inside functions.
"""
