"""Procedure definitions as files: JSON or TOML, read through one pydantic model.

Keys: ``name``, ``version`` (required), ``description``, ``parameters`` (a table of
``consultflow.Parameters``), ``roles`` (trigger -> list of roles, applied to every row of that
trigger) and ``transitions`` (a whole table of rows, replacing the six steps). Every problem is
listed at once, with where it is.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..errors import InvalidInput, ProcedureDefinitionError
from ..files import read_file
from ..parameters import Parameters
from ..roles import Role
from ..steps import Transition

__all__ = ["FORMATS", "ProcedureFile", "load_definition", "parse_definition", "read_definition"]

#: File suffixes read, and the format each is read as.
FORMATS: Mapping[str, str] = {".json": "JSON", ".toml": "TOML"}
_MAX_BYTES = 1_000_000

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProcedureFile(BaseModel):
    """What a definition file holds."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    name: Name
    version: Name
    description: str = Field(default="", max_length=10_000)
    parameters: Parameters = Parameters()
    roles: dict[str, tuple[Role, ...]] = Field(default_factory=dict)
    transitions: tuple[Transition, ...] | None = None


_ALLOWED = ", ".join(ProcedureFile.model_fields)


def _loc(loc: Sequence[int | str]) -> str:
    return ".".join(str(x) for x in loc)


def _problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    unknown: list[str] = []
    for e in exc.errors(include_url=False):
        loc, kind = e["loc"], e["type"]
        top = str(loc[0]) if loc else ""
        if kind == "extra_forbidden" and len(loc) == 1:
            unknown.append(top)
        elif kind == "missing" and top == "name" and len(loc) == 1:
            problems.append("'name' is missing or not text: give the procedure a name")
        elif kind == "missing" and top == "version" and len(loc) == 1:
            problems.append("'version' is missing: give the procedure a version, e.g. \"1\"")
        elif top == "roles" and len(loc) == 1:
            problems.append("'roles' must map a trigger to a list of roles")
        elif top == "roles" and kind == "enum":
            known = ", ".join(r.value for r in Role)
            problems.append(f"roles.{loc[1]}: unknown role {e['input']!r}; known roles: {known}")
        elif top == "transitions" and len(loc) == 1:
            problems.append("'transitions' must be a list of transitions")
        else:
            problems.append(f"{_loc(loc)}: {e['msg']}")
    if unknown:
        if "rules" in unknown:
            problems.append("'rules' is called 'parameters' now: rename the table to [parameters]")
            unknown.remove("rules")
        if unknown:
            problems.append(f"unknown keys {sorted(unknown)}: allowed are {_ALLOWED}")
    return problems


def parse_definition(data: object) -> ProcedureFile:
    """Validate a definition's data; ``ProcedureDefinitionError`` lists every problem."""
    if not isinstance(data, Mapping):
        raise ProcedureDefinitionError(
            "?", [f"a procedure definition is a table/object with name and version, not {type(data).__name__}"]
        )
    try:
        return ProcedureFile.model_validate(dict(data))
    except ValidationError as exc:
        name = data.get("name")
        raise ProcedureDefinitionError(name if isinstance(name, str) and name else "?", _problems(exc)) from None


def load_definition(path: str | Path) -> object:
    """The data of a ``.json`` or ``.toml`` definition file, not yet checked.

    A file that cannot be read or parsed is ``InvalidInput`` naming the file and its format; what the
    data says is checked by ``parse_definition`` (``ProcedureDefinitionError``).
    """
    p = Path(path)
    kind = FORMATS.get(p.suffix.lower())
    if kind is None:
        what = f"a {p.suffix} file" if p.suffix else "a file without a suffix"
        raise InvalidInput(
            f"cannot read {p}: {what} is not a supported format; a procedure definition is a .json (JSON) "
            "or .toml (TOML) file"
        )
    raw = read_file(p, limit=_MAX_BYTES, what="procedure definition")  # a regular file, bounded, never a FIFO
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"cannot read {p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{p} is not valid {kind}: {exc}") from exc
    except RecursionError:
        raise InvalidInput(f"{p} is nested too deeply to be a procedure definition") from None


def read_definition(path: str | Path) -> ProcedureFile:
    """Read and validate a ``.json`` or ``.toml`` definition file; every problem, a file that
    cannot be read or parsed included, is a ``ProcedureDefinitionError``."""
    try:
        data = load_definition(path)
    except InvalidInput as exc:
        raise ProcedureDefinitionError(Path(path).name, [str(exc)]) from None
    return parse_definition(data)
