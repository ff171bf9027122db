"""Reporting: the per-check record and the terminal, HTML and JSON views of it."""
