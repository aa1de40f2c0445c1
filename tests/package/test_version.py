"""One version everywhere it is written: ``__version__``, the provider info and the docs."""

from __future__ import annotations

import re
import tomllib

from packaging.version import Version

from airflow_provider_glue_labeling import __version__, get_provider_info
from tests.helpers import ROOT

VERSION = Version(__version__)
RELEASE = Version(VERSION.base_version)  # the release this version is, or leads to
PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
}


def released() -> list[Version]:
    """The versions CHANGELOG.md lists as released, newest first."""
    return [Version(v) for v in re.findall(r"(?m)^## (\d[\w.]*)$", (ROOT / "CHANGELOG.md").read_text())]


def test_the_version_is_a_release_or_the_next_release_in_development():
    assert VERSION == RELEASE or (VERSION.is_devrelease and VERSION.pre is None), __version__


def test_the_package_takes_its_version_from_version():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "airflow_provider_glue_labeling.__version__"}


def test_the_changelog_releases_come_before_this_version():
    versions = released()
    assert versions, "CHANGELOG.md lists no release"
    assert versions == sorted(versions, reverse=True)
    if VERSION.is_devrelease:
        assert versions[0] < RELEASE, f"{RELEASE} is in development, yet CHANGELOG.md lists it as released"
    else:
        assert versions[0] == VERSION


def test_the_provider_info_names_this_version():
    info = get_provider_info()
    assert info["versions"] == [__version__]
    added = [
        (f"{section}.{name}", Version(option["version_added"]))
        for section, options in info.get("config", {}).items()
        for name, option in options["options"].items()
    ]
    assert added
    for name, version in added:  # an option comes with this release or an earlier one
        assert version <= RELEASE, f"{name}: version_added {version} is after {RELEASE}"
        assert version == RELEASE or version in released(), (
            f"{name}: version_added {version} was never released"
        )


def test_the_docs_pin_the_release_this_version_leads_to():
    pins = [
        (page, Version(pin))
        for page, text in PAGES.items()
        for pin in re.findall(r"airflow-provider-glue-labeling==([\w.]+)", text)
    ]
    assert pins, "the docs pin no version"
    for page, pin in pins:
        assert pin == RELEASE, f"{page} pins {pin}; the release is {RELEASE}"
