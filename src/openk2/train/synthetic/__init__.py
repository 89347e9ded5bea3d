"""Synthetic tool-use chats for training and grading the embedded default model.

`generate_tasks` yields scripted K2.6-style agent chats (calculator, files, key-value store and the
swarm's `create_subagent`/`assign_task`) with a held-out split; `check_answer` grades a model's
final answer exactly; `ToolWorld` answers a model's tool calls during evaluation; a `ChatProfile`
sets the prompts, tool schemas and swarm result texts so the chats match the serving runtime;
`evaluate.run_task` grades a model in process.
"""

from openk2.train.synthetic.generate import (
    Task,
    check_answer,
    generate_tasks,
    read_tasks,
    training_records,
    write_jsonl,
)
from openk2.train.synthetic.profile import DEFAULT_PROFILE, ChatProfile
from openk2.train.synthetic.world import ToolWorld

__all__ = [
    "DEFAULT_PROFILE",
    "ChatProfile",
    "Task",
    "ToolWorld",
    "check_answer",
    "generate_tasks",
    "read_tasks",
    "training_records",
    "write_jsonl",
]
