"""`openk2 route`: an OpenAI-compatible proxy that picks a deployment per request.

Rules on request features choose a group; the group's strategy picks a deployment; failures
before the first byte fall back to the next deployment and cool the failed one down.
Upstreams are reached over HTTP only: never `openk2.model`, `engine` or `serve`.
"""
