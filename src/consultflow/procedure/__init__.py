"""The procedure (程序规范化): the six steps assembled from ``consultflow.steps``, declared once with
``transitions``, checked when built, compiled into an immutable lookup for the hot path.

- ``definition``: the rows (``Transition``), the default table, role changes;
- ``checks``: one small function per build-time check;
- ``compiled``: the Machine and the lookup the core reads (``Option``);
- ``model``: ``Procedure`` itself and ``six_step()``;
- ``io``: JSON and TOML definition files through a pydantic model;
- ``diagram``: Mermaid, DOT and Markdown.
"""

from .compiled import Option
from .definition import NEW, Transition, default_transitions
from .io import FORMATS, ProcedureFile
from .model import Procedure, six_step

__all__ = ["FORMATS", "NEW", "Option", "Procedure", "ProcedureFile", "Transition", "default_transitions", "six_step"]
