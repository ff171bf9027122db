"""The bundled demo target: a small backend, frontend, database and mail relay to sweep."""
