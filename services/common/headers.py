"""HTTP header names shared by the gateway config and the agents.

Kept free of imports so that jarvisctl can read them without loading PyJWT.
"""

from __future__ import annotations

# The gateway sends its own JWT in this header on every call it relays. A
# caller's JWT arrives in `Authorization`, because LiteLLM drops a forwarded
# header when a static header of the same name is configured (litellm 1.108).
GATEWAY_TOKEN_HEADER = "X-Jarvis-Gateway-Token"
