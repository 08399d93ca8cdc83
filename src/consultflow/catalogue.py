"""The topic catalogue (协商目录): seven first-level categories and each community's second-level items.

A consultation names an item as ``"<category>/<item>"``; a proposal on a topic that is not in its
community's list is refused. Every category of a community that has a list also has an "other" item
(``"<category>/other"``, 其他): a matter the list does not name is filed there, and the committee can
make it a new second-level item (``AddTopic``), which its log records and the engine accepts for new
proposals in that community from then on (``TopicItem.added_in``). The first three categories are
the source's own (公共事务, 公益事业, 政策制定调整); the other four follow the national guidance on
community consultation and can be replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from pydantic import Field, PrivateAttr, StringConstraints, model_validator

from .i18n import Lang
from .records import CATEGORY_PATTERN, ITEM_PATTERN, Id, Record

__all__ = ["DEFAULT_CATEGORIES", "OTHER", "Catalogue", "Category", "CommunityName", "TopicItem", "is_other"]

#: The slug of each category's "other" item (其他): a matter the community's list does not name yet.
OTHER = "other"


def is_other(topic: str) -> bool:
    """Whether ``topic`` is a category's "other" item (``"<category>/other"``)."""
    return topic.partition("/")[2] == OTHER


Slug = Annotated[str, StringConstraints(pattern=f"^{CATEGORY_PATTERN}$")]
ItemSlug = Annotated[str, StringConstraints(pattern=f"^{ITEM_PATTERN}$")]


class Category(Record):
    """A first-level category (一级目录)."""

    slug: Slug
    name_en: str = Field(min_length=1, max_length=120)
    name_zh: str = Field(min_length=1, max_length=60)

    def display_name(self, lang: Lang = "en") -> str:
        return self.name_en if lang == "en" else self.name_zh


class TopicItem(Record):
    """A second-level item (二级目录) of one community, under a category."""

    community: Id
    category: Slug
    slug: ItemSlug
    name: str = Field(min_length=1, max_length=200)
    #: the consultation whose log added the item (``AddTopic``); ``None`` for an item the catalogue lists
    added_in: Id | None = None

    @property
    def topic(self) -> str:
        return f"{self.category}/{self.slug}"


class CommunityName(Record):
    """A community's name in its catalogue, as people read it (``小桃园社区``), and ``name_en`` for
    English readers when it has one. (``consultflow.Community`` is the fuller record.)"""

    id: Id
    name: str = Field(min_length=1, max_length=120)
    name_en: str | None = Field(default=None, min_length=1, max_length=120)

    def display_name(self, lang: Lang = "en") -> str:
        return self.name_en if lang == "en" and self.name_en else self.name


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
    """The catalogue: first-level categories, the second-level items of each community, and the
    communities' names (optional: a community without one is shown by its id)."""

    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    items: tuple[TopicItem, ...] = ()
    communities: tuple[CommunityName, ...] = ()
    _index: dict[tuple[str, str], TopicItem] = PrivateAttr(default_factory=dict)
    _with_items: frozenset[str] = PrivateAttr(default=frozenset())
    _names: dict[str, CommunityName] = PrivateAttr(default_factory=dict)

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
        ids = [c.id for c in self.communities]
        if len(set(ids)) != len(ids):
            raise ValueError("each community is named once")
        self._index = {(i.community, i.topic): i for i in self.items}
        self._with_items = frozenset(i.community for i in self.items)
        self._names = {c.id: c for c in self.communities}
        return self

    def with_items(self, *items: TopicItem) -> Catalogue:
        """A new catalogue with these second-level items added (validated)."""
        return Catalogue(categories=self.categories, items=(*self.items, *items), communities=self.communities)

    def with_community(
        self,
        community: str,
        topics: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        name: str | None = None,
        name_en: str | None = None,
    ) -> Catalogue:
        """Add a community's second-level list: ``{"public-affairs/parking": "夜间停车", ...}``, and
        its name if given (``name="小桃园社区"``; ``name_en`` for English readers)."""
        pairs = topics.items() if isinstance(topics, Mapping) else topics
        added = []
        for topic, item_name in pairs:
            category, _, slug = topic.partition("/")
            added.append(TopicItem(community=community, category=category, slug=slug, name=item_name))
        communities = self.communities
        if name is not None:
            named = CommunityName(id=community, name=name, name_en=name_en)
            communities = (*(c for c in communities if c.id != community), named)
        return Catalogue(categories=self.categories, items=(*self.items, *added), communities=communities)

    def find(self, community: str, topic: str) -> TopicItem | None:
        """The community's item ``topic``; a category's "other" item (其他) is an item of every
        community that has a list (unless the community lists its own under that slug)."""
        found = self._index.get((community, topic))
        if found is None and is_other(topic) and community in self._with_items:
            category = topic.partition("/")[0]
            if self.category(category) is not None:
                return TopicItem(community=community, category=category, slug=OTHER, name="其他 other")
        return found

    def has_community(self, community: str) -> bool:
        """Whether the community has a catalogue: at least one second-level item."""
        return community in self._with_items

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def community_name(self, community: str, lang: Lang = "en") -> str:
        """The community as people read it: its registered name, else ``community <id>`` (``社区<id>``)."""
        named = self._names.get(community)
        if named is not None:
            return named.display_name(lang)
        return f"community {community}" if lang == "en" else f"社区{community}"

    def category_name(self, topic: str, lang: Lang = "en") -> str:
        """The first-level category of ``topic`` (``"public-affairs/..."`` -> 公共事务), else its slug."""
        slug = topic.partition("/")[0]
        found = self.category(slug)
        return found.display_name(lang) if found is not None else slug

    def item_name(self, community: str, topic: str) -> str:
        """The name the community gave the item (夜间停车), else the item's slug."""
        item = self.find(community, topic)
        return item.name if item is not None else topic.partition("/")[2] or topic

    def topic_name(self, community: str, topic: str, lang: Lang = "en") -> str:
        """The topic as people read it: category and item, ``公共事务：夜间停车`` / ``Public affairs: ...``."""
        sep = ": " if lang == "en" else "："
        return f"{self.category_name(topic, lang)}{sep}{self.item_name(community, topic)}"
