"""`openk2 eval` and `openk2 cost`: endpoint evaluation suites, runner, cache, reports, cost.

Everything here reaches a model over HTTP through `openk2.agent`'s OpenAI-compatible provider
(never `openk2.model` or `openk2.engine`; an import-linter contract keeps it so), so the same
suites judge openk2's own server, vLLM, SGLang or a hosted API side by side.
"""
