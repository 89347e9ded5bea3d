"""MuonClip: Muon + AdamW groups, QK-Clip, aux-loss-free router balancing, LR schedules."""
