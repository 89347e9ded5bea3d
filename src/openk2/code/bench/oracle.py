"""The oracle: a scripted model that applies each task's known fix through the real tools.

It proves the harness end to end (copy, session, tools, hashing, grading): with it every task
must pass, so a failure means the bench, not a model, is broken. `openk2 code bench --oracle`
runs it; the CI test does too.
"""

from __future__ import annotations

from openk2.agent.llm.scripted import Reply, ScriptedProvider, Step, call
from openk2.code.bench.tasks import BenchTask


def oracle_script(task: BenchTask) -> list[Step]:
    """ReadFile each file the fix touches, one StrReplaceFile per edit, then the answer."""
    paths = list(dict.fromkeys(f["path"] for f in task.fix))
    steps: list[Step] = [Reply(tool_calls=[call("ReadFile", i, path=p)
                                           for i, p in enumerate(paths)])]
    for i, fix in enumerate(task.fix):
        edit = {"old": fix["old"], "new": fix["new"], "replace_all": fix.get("replace_all", False)}
        steps.append(Reply(tool_calls=[call("StrReplaceFile", i, path=fix["path"], edit=edit)]))
    steps.append(Reply(text=f"Applied the known fix for {task.name}."))
    return steps


def oracle_provider(task: BenchTask) -> ScriptedProvider:
    """A fresh scripted provider for one run of `task`."""
    return ScriptedProvider(oracle_script(task), model="oracle")
