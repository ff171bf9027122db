"""The sweep's parts, each a pytest plugin built on the sweep context: collection, records, wait, gate."""
