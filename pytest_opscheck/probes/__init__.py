"""Probes: one module per component, plain Python that knows nothing of pytest.

Each probe returns `Finding` objects (ok, cause, evidence, timing) and never asserts; heavy client
libraries are imported inside the probe functions so that importing the plugin stays cheap.
"""
