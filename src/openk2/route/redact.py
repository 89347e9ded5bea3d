"""Upstream keys never leave the proxy: every text the proxy passes on or writes (an
upstream's error body, an error message, a decision-log line) goes through `Redactor`,
which replaces each upstream key's value, wherever it appears, with `[redacted]`."""

from __future__ import annotations

import os

from openk2.route.config import RouterConfig

MASK = "[redacted]"


class Redactor:
    """The upstream key values of one config (read from the environment at start)."""

    def __init__(self, cfg: RouterConfig) -> None:
        values = {os.environ.get(d.key) for d in cfg.deployments.values() if d.key}
        values |= {os.environ.get(k.env) for k in cfg.keys}
        self.secrets = sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True)

    def text(self, s: str) -> str:
        """`s` with every key value masked."""
        for secret in self.secrets:
            s = s.replace(secret, MASK)
        return s

    def body(self, raw: bytes) -> bytes:
        """A byte body (an upstream's error answer) with every key value masked."""
        for secret in self.secrets:
            raw = raw.replace(secret.encode(), MASK.encode())
        return raw
