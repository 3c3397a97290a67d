"""Mitmachen core: settings, database, app factory, accounts, sessions, security, i18n, CLI."""

from starlette.convertors import IntegerConvertor, register_url_convertor


class DatabaseIdConvertor(IntegerConvertor):
    """``{x:int}`` path parameters are database ids: at most 9 digits, so a huge number is a plain 404
    instead of an integer overflow in the database. Registered here, before any package defines a route."""

    regex = "[0-9]{1,9}"


register_url_convertor("int", DatabaseIdConvertor())
