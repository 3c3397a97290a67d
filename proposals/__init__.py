"""Proposals, comments, supports, follows, theme areas, districts, search and the open-data API."""
