"""Transports: how the probes talk to each kind of target, with a deadline on every call."""
