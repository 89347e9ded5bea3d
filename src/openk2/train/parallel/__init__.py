"""Distributed training on torch.distributed: FSDP2, expert parallelism, DCP checkpoints.

Applied to the model from outside (torchtitan's split): `openk2.model` knows nothing of ranks.
"""
