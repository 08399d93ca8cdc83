"""The docs are run or checked against the code, so they cannot drift from it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import consultflow as cf
from consultflow.i18n import MESSAGES

DOCS = Path(__file__).parent.parent / "docs"


def _blocks(page: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S)


def test_the_variant_example_in_the_procedure_page_runs() -> None:
    (code,) = _blocks("procedure.md", "python")
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/procedure.md", "exec"), namespace)
    mine = namespace["mine"]
    assert isinstance(mine, cf.Procedure)
    assert (mine.parameters.consultation_day, mine.parameters.round_limit) == (11, 4)


def test_the_toml_example_in_the_procedure_page_builds(tmp_path: Path) -> None:
    (text,) = _blocks("procedure.md", "toml")
    assert cf.Procedure.from_dict(tomllib.loads(text)).parameters.notice_period.days == 5
    path = tmp_path / "xiaotaoyuan.toml"
    path.write_text(text, encoding="utf-8")
    assert cf.Procedure.from_file(path).key == ("xiaotaoyuan", "2")


def test_the_refusals_page_lists_every_code_in_both_languages() -> None:
    page = (DOCS / "refusals.md").read_text(encoding="utf-8")
    for code, (en, zh) in MESSAGES.items():
        assert f"| `{code}` | {en} | {zh} |" in page, code


def test_the_procedure_page_describes_every_parameter() -> None:
    page = (DOCS / "procedure.md").read_text(encoding="utf-8")
    section = page.split("## Parameters a community sets", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    described = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert described == set(cf.Parameters.model_fields), set(cf.Parameters.model_fields) ^ described


def test_the_procedure_page_names_every_guard_and_route() -> None:
    from consultflow.steps import STEPS

    page = (DOCS / "procedure.md").read_text(encoding="utf-8")
    for step in STEPS:
        for guard in step.guards:
            assert f"| `{guard.name}` |" in page, guard.name
            for code in guard.codes:
                assert f"`{code}`" in page, code
        for route in step.routes:
            assert f"| `{route.name}` |" in page, route.name
