"""Model components, one concept per file: norm, rope (YaRN), mla, moe, mlp."""
