"""MuonClip training, SFT and LoRA fine-tuning."""
