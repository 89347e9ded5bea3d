"""`openk2 code`: a terminal coding agent on top of `openk2.agent` (tools, sessions, runner).

Never imports `model`, `engine`, `serve`, `train`, `embedded` or `cli` (import-linter
contract): the CLI wires an embedded server in, this package only sees a `ChatProvider`.
"""
