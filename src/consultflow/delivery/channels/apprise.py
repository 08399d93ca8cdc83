"""Apprise: WeCom, DingTalk, Feishu, Telegram, SMS gateways and more, one URL each (optional:
``pip install 'consultflow[apprise]'``).

A contact's address is an Apprise URL (``wecombot://...``, ``dingtalk://...``, ``json://host/path``).
Apprise reports only success or failure, so a failure is treated as transient (retried, then dead
lettered with the reason); a URL Apprise does not understand is permanent.
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import InvalidInput
from ..channel import Delivery, Outcome

__all__ = ["AppriseChannel"]


def _apprise() -> Any:
    try:
        return importlib.import_module("apprise")
    except ImportError:
        raise InvalidInput("the Apprise channel needs Apprise: pip install 'consultflow[apprise]'") from None


class AppriseChannel:
    """Sends each delivery to its address (an Apprise URL), or to ``urls`` when given (one fixed
    set of targets, e.g. a community's WeCom group)."""

    def __init__(self, urls: tuple[str, ...] = ()) -> None:
        self._lib = _apprise()
        self.urls = tuple(urls)
        for url in self.urls:
            if self._lib.Apprise.instantiate(url) is None:
                raise InvalidInput(f"Apprise does not understand the URL {url.split('://')[0]}://...")

    def send(self, delivery: Delivery) -> Outcome:
        apobj = self._lib.Apprise()
        for url in self.urls or (delivery.address,):
            if not apobj.add(url):
                return Outcome.failed(f"Apprise does not understand the URL {url.split('://')[0]}://...")
        ok = apobj.notify(body=delivery.message.body, title=delivery.message.subject)
        return Outcome.delivered() if ok else Outcome.retry("Apprise could not notify (see its log)")
