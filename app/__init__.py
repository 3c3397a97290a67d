"""Mitmachen core: settings, database, app factory, accounts, sessions, security, i18n, CLI."""
