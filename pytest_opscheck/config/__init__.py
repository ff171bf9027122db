"""The sweep's one configuration: read from TOML and the environment, validated before the first connection.

`settings` holds the frozen `Settings` and its loaders; `values` the table's keys and their converters; `env`
the `.env` file (Compose's rules); `secrets` the `${VAR}` expansion and what counts as a secret; `edge` the
checks of URLs and paths that cross the sweep's edge.
"""

from .settings import Auth, ConfigError, Migrations, Settings, Smtp, Thresholds, load_settings, settings_from_table

__all__ = [
    "Auth", "ConfigError", "Migrations", "Settings", "Smtp", "Thresholds", "load_settings", "settings_from_table",
]
