"""Who may use compute and jobs: an API token, a person's own token, or (with none configured) this machine only.

- ``API_TOKEN`` (one shared token) and/or ``API_TOKENS`` (``{"name": "token"}``, one per person): requests must send
  ``Authorization: Bearer <token>`` (401 without one, 403 with a wrong one). The caller is then that token's owner.
- Neither set: compute and job endpoints answer loopback clients only; others get a 403 that names the setting.

The stove keeps its own tokens (``STOVE_API_TOKEN(S)``). The owner identity (:func:`caller`) is what jobs record to
let their owner read and cancel them without the job key, and what per-client pending caps count.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from flask import current_app, g, request

from backend.web.errors import ApiError


def _tokens() -> dict[str, str]:
    cfg = current_app.config
    tokens = {name: token for name, token in (cfg.get("API_TOKENS") or {}).items() if token}
    if cfg.get("API_TOKEN"):
        tokens.setdefault("api", cfg["API_TOKEN"])
    return tokens


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _bearer() -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def require() -> str:
    """Authorise a compute or job request; returns the caller's identity (also kept as ``g.api_caller``)."""
    if "api_caller" in g:
        return g.api_caller
    tokens = _tokens()
    given = _bearer()
    if tokens:
        if given is None:
            raise ApiError(401, "this server needs an API token for computations and jobs; send "
                                "'Authorization: Bearer <token>' (ask whoever runs it)", code="unauthorized",
                           limit="API_TOKEN")
        owner = None
        for name, token in tokens.items():  # compare with every token: no early exit to time
            if hmac.compare_digest(given.encode(), token.encode()):
                owner = name
        if owner is None:
            raise ApiError(403, "this API token is not valid here; check it with whoever runs the server",
                           code="forbidden", limit="API_TOKEN")
        g.api_caller = f"token:{owner}"
        return g.api_caller
    if not is_loopback(request.remote_addr):
        raise ApiError(403, "computations and jobs answer only this machine unless an API token is set; ask whoever "
                            "runs the server to set one and use it", code="forbidden", limit="API_TOKEN")
    g.api_caller = f"local:{request.remote_addr}"
    return g.api_caller


def caller_key(identity: str) -> str:
    """A stable, non-reversible id for an owner (stored with jobs; never the token itself)."""
    return hashlib.sha256(identity.encode()).hexdigest()[:32]
