"""Cascade-decoder autoencoders (paper reproduction)."""
