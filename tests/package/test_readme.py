"""Every code block in the README and the Markdown docs pages runs or holds as written."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import textwrap
import tomllib
import warnings

import pytest
from packaging.requirements import Requirement

from tests.helpers import ROOT

PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}
README = "\n".join(PAGES.values())
BLOCKS = [
    (m.group(1), m.group(2), f"{page} line {text.count(chr(10), 0, m.start()) + 1}")
    for page, text in PAGES.items()
    for m in re.finditer(r"(?ms)^```(\w*)\n(.*?)^```$", text)
]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def blocks(language: str) -> list:
    found = [pytest.param(code, id=where) for lang, code, where in BLOCKS if lang == language]
    assert found, f"the README has no {language} block"
    return found


def test_every_block_names_its_language():
    assert {lang for lang, _, _ in BLOCKS} <= {"python", "bash", "json", "text", "console"}, BLOCKS


@pytest.mark.parametrize("code", blocks("python"))
def test_python_blocks_run(code):
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("code", blocks("bash"))
def test_bash_blocks_name_real_targets_and_extras(code):
    targets = set(re.findall(r"(?m)^([\w-]+):", (ROOT / "Makefile").read_text()))
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            assert words[1] in targets, line
        elif words[:2] == ["pip", "install"]:
            requirement = Requirement(words[2])
            assert requirement.name == PYPROJECT["project"]["name"], line
            assert requirement.extras <= extras, line
        else:
            pytest.fail(f"unchecked command in the README: {line}")


@pytest.mark.parametrize("code", blocks("json"))
def test_json_blocks_parse(code):
    json.loads(code)


@pytest.mark.parametrize("code", blocks("text"))
def test_requirements_blocks_install_this_provider(code):
    """The MWAA ``requirements.txt``: a constraint line and this provider (its version:
    ``test_version.py``)."""
    lines = [line for line in code.splitlines() if line.strip()]
    assert re.fullmatch(r'--constraint "/usr/local/airflow/dags/[\w.-]+\.txt"', lines[0]), lines[0]
    (requirement,) = (Requirement(line) for line in lines[1:])
    assert requirement.name == PYPROJECT["project"]["name"]


def documented_names() -> list[str]:
    """Every ``airflow_provider_glue_labeling.<module>[.<name>]`` the README names, and each
    operator it lists under ``airflow_provider_glue_labeling.operators``."""
    dotted = set(re.findall(r"airflow_provider_glue_labeling(?:\.\w+)+", README))
    operators = README[README.index("**`airflow_provider_glue_labeling.operators`**") :]
    operators = operators[: operators.index("\n\n**")]
    dotted |= {
        f"airflow_provider_glue_labeling.operators.{n}" for n in re.findall(r"^- `(\w+)", operators, re.M)
    }
    return sorted(dotted)


@pytest.mark.parametrize("name", documented_names())
def test_every_name_the_readme_documents_imports_from_where_it_says(name):
    parts = name.split(".")
    for split in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            found = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return
    raise AssertionError(f"{name} does not import")


def import_lines() -> list:
    """Every ``from airflow_provider_glue_labeling... import ...`` (parenthesized ones whole) and
    ``import ..., airflow_provider_glue_labeling...`` in the README and the Markdown docs pages."""
    found = [
        pytest.param(textwrap.dedent(m.group(0)), id=f"{page} line {text.count(chr(10), 0, m.start()) + 1}")
        for page, text in PAGES.items()
        for m in re.finditer(
            r"(?m)^ *(?:from airflow_provider_glue_labeling[\w.]* import (?:\([^)]*\)|.*)"
            r"|import (?:[\w.]+(?: as \w+)?, )*airflow_provider_glue_labeling.*)",
            text,
        )
    ]
    assert found, "the pages import nothing from the provider"
    return found


@pytest.mark.parametrize("line", import_lines())
def test_every_import_line_of_the_pages_imports_without_a_deprecated_path(line):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(line, "README.md", "exec"), {})
    ours = [str(w.message) for w in caught if str(w.message).startswith("airflow_provider_glue_labeling.")]
    assert not ours, ours
