"""The syncd configuration file for a sandbox: ``config/sandbox.toml`` is this, for port 8780.

``syncd sandbox --port N --write-config FILE`` writes it for another port, so the three URLs never
have to be edited by hand.  Plain text from plain data: the sandbox knows nothing of syncd's
settings classes (:func:`~syncd.sandbox.app.syncd_config_for` gives the same values as a dict).
"""

from __future__ import annotations

import json
from typing import Any

from .app import Sandbox, syncd_config_for

HEADER = """\
# syncd configuration for the local vendor sandbox (`syncd sandbox{port_option}`, port {port}).
# Written by `syncd sandbox --write-config`; for another port, write one with
# `syncd sandbox --port N --write-config FILE` instead of editing the URLs.
# SANDBOX-ONLY credentials: they are fixed, public and accepted by nothing but the sandbox.
# Never reuse them, or this file, against a real InfinityHR, WhosOff or WORKBOX tenant.

# The staging database: the default, syncd.db in the state directory ($STATE_DIRECTORY, else this
# file's directory), whatever the working directory.
"""


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def sandbox_toml(sandbox: Sandbox, *, default_port: int) -> str:
    """The configuration text for ``sandbox`` (its URLs, credentials and signature)."""
    config = syncd_config_for(sandbox, "")
    del config["database"]  # the default location, not a URL of this file's own
    config["log"] = {"level": "info"}
    port = sandbox.base_url.rsplit(":", 1)[1]
    lines = [HEADER.format(port=port, port_option="" if port == str(default_port) else f" --port {port}")]
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)
