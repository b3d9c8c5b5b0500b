"""The layout block of docs/development.md is checked against the tree, and the tests mirror
the package: a module added, moved or removed without the page (or a test folder without its
module) fails here."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "airflow_provider_iotda"
PAGE = REPO / "docs" / "development.md"
# Folders of the package listed as a whole (their files are not Python modules of their own).
WHOLE_FOLDERS = {"simulator", "templates"}
# Modules whose tests live in the file of the module they serve (and only there).
TESTED_THROUGH = {
    "hooks/base.py": "hooks/test_iotda.py",
    "hook_access.py": "sensors/test_iotda.py",
    "retry.py": "test_errors_retry.py",
    "transfers/sql_history.py": "transfers/test_iotda_to_sql.py",
}


def layout_block() -> list[str]:
    text = PAGE.read_text()
    match = re.search(r"```\n(airflow_provider_iotda/\n.*?)```", text, flags=re.S)
    assert match, "docs/development.md has no layout block starting with airflow_provider_iotda/"
    return match.group(1).splitlines()


def listed_under(top: str) -> set[str]:
    """The paths the block lists under ``top`` (indented entries; continuation lines skipped)."""
    entries: set[str] = set()
    inside = False
    for line in layout_block():
        if not line.startswith(" "):
            inside = line.split()[0] == top
            continue
        if inside:
            first = line.split()[0]
            if first.endswith((".py", "/")):
                entries.add(first)
    return entries


def package_entries() -> set[str]:
    entries: set[str] = set()
    for path in PACKAGE.rglob("*"):
        relative = path.relative_to(PACKAGE)
        if "__pycache__" in relative.parts:
            continue
        if relative.parts[0] in WHOLE_FOLDERS:
            entries.add(relative.parts[0] + "/")
        elif path.suffix == ".py" and path.name != "__init__.py":
            entries.add(relative.as_posix())
    return entries


def test_every_module_of_the_package_is_listed_and_every_listed_one_exists() -> None:
    listed = listed_under("airflow_provider_iotda/")
    actual = package_entries()
    assert sorted(actual - listed) == [], "modules missing from docs/development.md"
    assert sorted(listed - actual) == [], "docs/development.md lists modules that do not exist"


def test_the_top_level_folders_listed_exist() -> None:
    tops = [line.split()[0] for line in layout_block() if line and not line.startswith(" ")]
    for top in tops:
        assert (REPO / top).is_dir(), f"docs/development.md lists {top}, which does not exist"


def test_every_test_folder_is_listed() -> None:
    listed = listed_under("tests/")
    actual = {p.name + "/" for p in (REPO / "tests").iterdir() if (p / "__init__.py").exists()}
    assert listed == actual


def test_unit_tests_mirror_the_package() -> None:
    """tests/unit/<folder>/ exists only for a package folder of that name, and every module
    outside the whole-listed folders has a test file named after it (or its module folder)."""
    unit = REPO / "tests" / "unit"
    for folder in (p for p in unit.iterdir() if (p / "__init__.py").exists()):
        assert (PACKAGE / folder.name).is_dir(), f"tests/unit/{folder.name} mirrors nothing"
    test_names = {p.relative_to(unit).as_posix() for p in unit.rglob("test_*.py")}
    untested = []
    for module in sorted(package_entries()):
        if module.endswith("/"):
            continue
        folder, _, name = module.rpartition("/")
        stem = name.removesuffix(".py")
        prefix = f"{folder}/test_{stem}" if folder else f"test_{stem}"
        if module in TESTED_THROUGH:
            assert TESTED_THROUGH[module] in test_names, module
        elif not any(t == prefix + ".py" or t.startswith(prefix + "_") for t in test_names):
            untested.append(module)
    assert untested == [], "modules without a test file of their name in tests/unit"
