"""Each public name imports from the one path docs/parameters.md gives it; 0.1.0's old paths warn."""

from __future__ import annotations

import importlib
import re
import warnings

import pytest

from tests.helpers import ROOT

PAGE = (ROOT / "docs" / "parameters.md").read_text()
SECTION = PAGE[PAGE.index("## Import paths\n") :]
SECTION = SECTION[: SECTION.index("\n## ", 1)]
CURRENT, DEPRECATED = SECTION.split("\nDeprecated")
ROWS = re.compile(r"(?m)^\| `(airflow_provider_glue_labeling[\w.]*)` \| (.+) \|$")


def documented() -> list[tuple[str, str]]:
    """``(module, name)`` of every name the table lists."""
    return [
        (module, name)
        for module, names in ROWS.findall(CURRENT)
        for name in re.findall(r"`(\w+)`", names.split(" (")[0])
    ]


def deprecated() -> list[tuple[str, str]]:
    """``(old path, new path)`` of every deprecated alias."""
    return [(old, new.strip("`")) for old, new in ROWS.findall(DEPRECATED)]


def split(path: str) -> tuple[str, str]:
    module, _, name = path.rpartition(".")
    return module, name


def test_the_section_lists_the_public_modules_and_two_deprecated_aliases():
    modules = {module for module, _ in documented()}
    assert {"operators", "sensors", "triggers", "hooks", "exceptions", "history"} <= {
        m.removeprefix("airflow_provider_glue_labeling.") for m in modules
    }
    assert len(deprecated()) == 2


def test_each_name_has_one_documented_path():
    names = [name for _, name in documented()]
    assert sorted(names) == sorted(set(names))


@pytest.mark.parametrize(("module", "name"), documented(), ids=".".join)
def test_each_documented_path_imports_without_a_warning(module, name):
    found = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert getattr(found, name) is not None


@pytest.mark.parametrize(("old", "new"), deprecated(), ids=[old for old, _ in deprecated()])
def test_each_deprecated_alias_warns_and_is_the_same_object(old, new):
    old_module, name = split(old)
    new_module, new_name = split(new)
    module = importlib.import_module(old_module)
    with pytest.warns(DeprecationWarning, match=re.escape(f"import {name} from {new_module}")) as record:
        found = getattr(module, name)
    assert found is getattr(importlib.import_module(new_module), new_name)
    assert record[0].filename == __file__  # the warning names the line that used the old path


@pytest.mark.parametrize(
    "path",
    [
        "airflow_provider_glue_labeling.exceptions.TaskRunStatus",
        "airflow_provider_glue_labeling.hooks.TaskRunStatus",
        "airflow_provider_glue_labeling.validation.labels_file_problems",
        "airflow_provider_glue_labeling.validation.unlabeled_sets_problem",
    ],
)
def test_names_never_released_there_are_not_handed_on(path):
    module, name = split(path)
    with pytest.raises(AttributeError, match=name):
        getattr(importlib.import_module(module), name)
