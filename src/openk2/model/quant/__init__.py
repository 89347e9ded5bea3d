"""Weight quantization formats of the released checkpoints: INT4 pack-quantized and FP8 block."""
