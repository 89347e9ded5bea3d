"""Kimi tokenizer, K2.6 chat template and streaming output parsers. Imports no torch."""
