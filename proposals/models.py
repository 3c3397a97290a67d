"""Theme areas and city districts: configuration data a city edits in the admin area."""

from __future__ import annotations

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Theme(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("slug", name="uq_theme_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    name_de: str = Field(sa_column=Column(String(100), nullable=False))
    name_en: str = Field(sa_column=Column(String(100), nullable=False))
    description_de: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_en: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    position: int = Field(default=0)
    is_active: bool = Field(default=True)

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name_de

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" and self.description_en else self.description_de


class District(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("slug", name="uq_district_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    position: int = Field(default=0)
    is_active: bool = Field(default=True)
