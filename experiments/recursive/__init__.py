"""Recursively trained autoencoders (paper reproduction)."""
