"""The consumer app: the web page at `/`, server-side tools and agent mode (swarm runs
streamed to the page), mounted by the CLI on `serve`'s ASGI app.

`app → serve, agent`: it reaches the model through the server's own `/v1`, like any client.
"""

from openk2.app.config import AppConfig, parse_tools_option
from openk2.app.mount import mount_app

__all__ = ["AppConfig", "mount_app", "parse_tools_option"]
