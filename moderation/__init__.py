"""Flags, review queue, decisions with statements of reasons, appeals, transparency counts."""
