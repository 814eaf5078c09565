"""Sampling: training samples from deposits (labels, blocks, pairs, augmentation) and their storage."""
