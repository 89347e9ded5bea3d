"""Inference engine: continuous batching over the paged MLA latent cache."""
