"""What a weak secret looks like, shared by the stack's and the auth probes' secret verdicts."""

from __future__ import annotations

# Values an .env template ships with: a secret that still holds one was never set.
PLACEHOLDERS = {"changethis", "changeme", "change_me", "secret", "password", "todo", "xxx"}
# The shortest token-signing secret that is not too short (characters).
MIN_SECRET_LENGTH = 32
