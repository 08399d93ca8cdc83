"""The topic catalogue (协商目录): seven first-level categories and each community's second-level items.

A consultation names an item as ``"<category>/<item>"``; a proposal on a topic that is not in its
community's list is refused. The first three categories are the source's own (公共事务, 公益事业,
政策制定调整); the other four follow the national guidance on community consultation and can be
replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from .records import CATEGORY_PATTERN, ITEM_PATTERN, Id, Record

__all__ = ["DEFAULT_CATEGORIES", "Catalogue", "Category", "TopicItem"]

Slug = Annotated[str, StringConstraints(pattern=f"^{CATEGORY_PATTERN}$")]
ItemSlug = Annotated[str, StringConstraints(pattern=f"^{ITEM_PATTERN}$")]


class Category(Record):
    """A first-level category (一级目录)."""

    slug: Slug
    name_en: str = Field(min_length=1, max_length=120)
    name_zh: str = Field(min_length=1, max_length=60)


class TopicItem(Record):
    """A second-level item (二级目录) of one community, under a category."""

    community: Id
    category: Slug
    slug: ItemSlug
    name: str = Field(min_length=1, max_length=200)

    @property
    def topic(self) -> str:
        return f"{self.category}/{self.slug}"


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category(slug="public-affairs", name_en="Public affairs", name_zh="公共事务"),
    Category(slug="public-benefit", name_en="Public-benefit undertakings", name_zh="公益事业"),
    Category(slug="policy", name_en="Making or adjusting policies", name_zh="政策制定调整"),
    Category(slug="difficulties", name_en="Pressing practical difficulties", name_zh="实际困难问题"),
    Category(slug="disputes", name_en="Conflicts and disputes", name_zh="矛盾纠纷"),
    Category(slug="implementation", name_en="Carrying out policies locally", name_zh="政策落实"),
    Category(slug="statutory", name_en="Matters the law requires to be consulted", name_zh="法定协商事项"),
)


class Catalogue(Record):
    """The catalogue: first-level categories and the second-level items of each community."""

    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    items: tuple[TopicItem, ...] = ()
    _index: dict[tuple[str, str], TopicItem] = PrivateAttr(default_factory=dict)
    _communities: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        slugs = [c.slug for c in self.categories]
        if len(set(slugs)) != len(slugs):
            raise ValueError("category slugs must be unique")
        known = set(slugs)
        seen: set[tuple[str, str]] = set()
        for item in self.items:
            if item.category not in known:
                raise ValueError(
                    f"item {item.topic!r} of {item.community!r} names an unknown category; "
                    f"use one of: {', '.join(slugs)}"
                )
            key = (item.community, item.topic)
            if key in seen:
                raise ValueError(f"item {item.topic!r} is listed twice for {item.community!r}")
            seen.add(key)
        self._index = {(i.community, i.topic): i for i in self.items}
        self._communities = frozenset(i.community for i in self.items)
        return self

    def with_items(self, *items: TopicItem) -> Catalogue:
        """A new catalogue with these second-level items added (validated)."""
        return Catalogue(categories=self.categories, items=(*self.items, *items))

    def with_community(self, community: str, topics: Mapping[str, str] | Iterable[tuple[str, str]]) -> Catalogue:
        """Add a community's second-level list: ``{"public-affairs/parking": "夜间停车", ...}``."""
        pairs = topics.items() if isinstance(topics, Mapping) else topics
        added = []
        for topic, name in pairs:
            category, _, slug = topic.partition("/")
            added.append(TopicItem(community=community, category=category, slug=slug, name=name))
        return self.with_items(*added)

    def find(self, community: str, topic: str) -> TopicItem | None:
        return self._index.get((community, topic))

    def has_community(self, community: str) -> bool:
        return community in self._communities

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)
