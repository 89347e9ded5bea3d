"""Who is calling: the caller's bearer key is checked against the configured keys, and each
key's spend is capped by its own budget.

Keys are compared in constant time (`hmac.compare_digest`) and only their names ever reach
the decision log, `/metrics` or an error message.
"""

from __future__ import annotations

import collections
import hmac

from openk2.route.config import CallerKey


class Callers:
    """The configured caller keys (values read from the environment at start) and spend."""

    def __init__(self, keys: tuple[CallerKey, ...]) -> None:
        self.keys = [(k, k.value().encode()) for k in keys]
        self.spend: dict[str, float] = collections.defaultdict(float)

    @property
    def open(self) -> bool:
        """No keys configured: anyone may call."""
        return not self.keys

    def identify(self, authorization: str | None) -> CallerKey | None:
        """The key the `Authorization: Bearer ...` header names, None if none matches."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        presented = authorization[len("Bearer "):].strip().encode()
        found = None
        for key, value in self.keys:  # every key is compared: no early-exit timing
            if hmac.compare_digest(presented, value):
                found = key
        return found

    def over_budget(self, key: CallerKey | None) -> bool:
        """Has this caller spent its cap?"""
        return key is not None and key.budget_usd is not None and \
            self.spend[key.name] >= key.budget_usd

    def charge(self, key: CallerKey | None, cost: float) -> None:
        """Add one response's cost to the caller's spend."""
        if key is not None:
            self.spend[key.name] += cost
