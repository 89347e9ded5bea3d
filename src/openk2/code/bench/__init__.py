"""Tier B of the coding-agent evaluation: micro-repos with hidden failing tests.

Run with `openk2 code bench`; see `tasks.py` for the task layout.
"""
