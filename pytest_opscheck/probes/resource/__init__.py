"""Resources: the targets as the probes see them, opened once per sweep."""
