"""`openk2 deploy`: launch commands for vLLM, SGLang and KTransformers that fit the hardware.

Pure arithmetic over a model's `config.json` (or a known preset) and a GPU table; it never
imports torch or any other openk2 runtime package, so it runs on the machine that launches.
"""
