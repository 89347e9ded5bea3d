"""OpenAI-compatible HTTP server and the web chat page."""
