"""Run sub-agents as Ray tasks, to spread a swarm over the machines of a Ray cluster.

Optional extra `ray`. Implements `remote.RemoteBackend`: the orchestrator, budgets and the
durable log stay in the driver, each sub-agent invocation runs as one Ray task (see `remote.py`
for what that changes).
"""

from __future__ import annotations

import asyncio
from typing import Any

from openk2.agent.swarm.remote import RemoteJob, RemoteReport, run_job


def _remote_entry(job: RemoteJob) -> RemoteReport:
    return asyncio.run(run_job(job))


class RayBackend:
    """Submits `RemoteJob`s as Ray tasks (starts a local Ray instance if none is running)."""

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None,
                 task_options: dict[str, Any] | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False,
                     log_to_driver=False)
        self._remote = ray.remote(_remote_entry).options(**(task_options or {}))

    async def run(self, job: RemoteJob) -> RemoteReport:
        """Run `job` on a worker; awaiting a Ray ObjectRef does not block the event loop."""
        report: RemoteReport = await self._remote.remote(job)
        return report
