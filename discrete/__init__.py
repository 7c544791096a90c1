"""Discrete networks, data, training rules, indexing conventions and mechanics (numpy only)."""
