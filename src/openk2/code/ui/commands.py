"""Slash commands about the session's surroundings: /compact, /sessions, /model, /approvals.

Each takes the shell's state, the console and the text after the command. They act through
the pieces the session already has (compactor, session store, provider, the guard's
`ApprovalStore`) so what they change is what the next turn uses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console

from openk2.code.ui.status import apply_settings

if TYPE_CHECKING:
    from openk2.agent.guard import ApprovalStore
    from openk2.code.ui.shell import ShellState


async def compact(state: ShellState, console: Console, _: str) -> None:
    """Summarise the older steps now, whatever the context size."""
    s = state.session
    before = len(s.parts.history)
    after = len(await s.compact())
    if after == before:
        console.print("nothing to compact yet (too few steps)")
    else:
        console.print(f"compacted: {before} messages -> {after}")


async def sessions(state: ShellState, console: Console, _: str) -> None:
    """This workspace's sessions, newest first (ids for `--resume`)."""
    if state.store is None or state.workspace is None:
        console.print("no session store")
        return
    found = state.store.list(state.workspace)
    for info in found[:50]:
        mark = "*" if info.id == state.session.log.id else " "
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started))
        prompt = info.first_prompt.splitlines()[0][:60] if info.first_prompt else "(no prompt)"
        console.print(f"{mark} {info.id}  {when}  {prompt}", markup=False)
    console.print(f"{len(found)} sessions in this workspace; resume one with --resume ID")


async def model(state: ShellState, console: Console, arg: str) -> None:
    """Show the model name, or switch the endpoint's model for the next calls."""
    provider = state.session.parts.provider
    if arg:
        if not hasattr(provider, "model"):
            console.print("this provider cannot switch models")
            return
        provider.model = arg  # type: ignore[attr-defined]
        state.session.log.append("model", model=arg)
        if state.settings is not None:  # its [models.NAME] table: window, thinking, price
            apply_settings(state, state.settings.for_model(arg))
    console.print(f"model: {provider.model_name}")


async def approvals(state: ShellState, console: Console, arg: str) -> None:
    """List the project's persisted prefix approvals; `/approvals remove N` withdraws one."""
    store = _approval_store(state)
    if store is None:
        console.print("this session keeps no approvals")
        return
    prefixes = list(store.prefixes)
    verb, _, which = arg.partition(" ")
    if verb == "remove":
        if not which.strip().isdigit() or not 1 <= int(which) <= len(prefixes):
            console.print(f"usage: /approvals remove N (1 to {len(prefixes)})")
            return
        gone = prefixes.pop(int(which) - 1)
        store.remove(gone)
        console.print(f"removed approval: {' '.join(gone)}", markup=False)
    elif verb:
        console.print("usage: /approvals [remove N]")
        return
    for i, prefix in enumerate(prefixes, 1):
        console.print(f"{i}. {' '.join(prefix)}", markup=False)
    if not prefixes:
        console.print("no approved command prefixes")


def _approval_store(state: ShellState) -> ApprovalStore | None:
    """The guard policy's store (None for a session without the guard, as in tests)."""
    gate = getattr(state.session.parts.toolset.gate, "gate", None)
    policy = getattr(gate, "policy", None)
    return getattr(policy, "approvals", None)
