"""Caller sessions: the store interface, its implementations and token handling."""
