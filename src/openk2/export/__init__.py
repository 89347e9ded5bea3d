"""Exports of openk2 models into other runtimes' formats (`openk2 convert --to gguf`).

An export reads both a checkpoint (`openk2.model`) and its tokenizer (`openk2.tokenizer`), so
it lives above both; only the CLI imports it.
"""
