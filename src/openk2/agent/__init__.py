"""Agent core and swarm runtime; reaches models only through the provider protocol."""
