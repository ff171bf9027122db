"""The team's runbook: `parse` reads its sections, resolutions and severity table; `text` reads the file safely;
`links` ties checks to its sections. Importing the package loads the parser only."""

from .parse import (
    Runbook,
    RunbookError,
    Section,
    anchor_url,
    diagnosis_sections,
    escalate_after,
    escalation,
    parse_runbook,
    plain,
    resolution,
    severity_targets,
)

__all__ = [
    "Runbook", "RunbookError", "Section", "anchor_url", "diagnosis_sections", "escalate_after", "escalation",
    "parse_runbook", "plain", "resolution", "severity_targets",
]
