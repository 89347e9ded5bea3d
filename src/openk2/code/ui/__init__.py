"""The interactive terminal UI of `openk2 code`: prompt_toolkit input, rich output."""
