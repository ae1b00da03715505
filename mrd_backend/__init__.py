"""MRD backend."""
