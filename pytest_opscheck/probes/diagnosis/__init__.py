"""Diagnoses: a resource in, a Finding out, one module per runbook topic."""
