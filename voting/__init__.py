"""Voting and tamper-evident audit log."""
