"""Reproductions of the papers cdcodec grows out of, one subpackage each."""
