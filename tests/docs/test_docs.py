"""The Sphinx pages in docs/: every DAG they show is a real file, included from it, and run.

- every ``literalinclude`` names an existing file, and its ``start-after`` / ``end-before``
  markers are there, once each, in that order;
- no page pastes a DAG (a ``python`` block with ``DAG(`` or ``@dag``);
- every example DAG a page includes is run by a test (tests/system);
- every page is in the index's toctree, and the toctree names only pages that exist;
- the testing page lists every instance of the simulator's demo scenario.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))

_DIRECTIVE = re.compile(
    r"^```\{(?P<name>[\w-]+)\}\s*(?P<argument>.*?)\s*\n(?P<body>.*?)^```", re.S | re.M
)
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$", re.M)


def directives(page: Path, name: str) -> list[tuple[str, dict[str, str]]]:
    """``(argument, options)`` of each ``{name}`` directive of a MyST page."""
    found = []
    for match in _DIRECTIVE.finditer(page.read_text()):
        if match.group("name") == name:
            options = {
                m.group("key"): m.group("value").strip().strip('"')
                for m in _OPTION.finditer(match.group("body"))
            }
            found.append((match.group("argument"), options))
    return found


INCLUDES = [
    pytest.param(page, argument, options, id=f"{page.name}:{options.get('start-after', argument)}")
    for page in PAGES
    for argument, options in directives(page, "literalinclude")
]


def test_the_pages_include_code() -> None:
    """A guard for the parser: it sees the includes of the pages that have them."""
    pages = {page.name for page, *_ in (p.values for p in INCLUDES)}
    assert {"quickstart.md", "sensor.md", "operator.md", "time-windows.md"} <= pages


@pytest.mark.parametrize(("page", "target", "options"), INCLUDES)
def test_literalinclude_targets_and_markers_exist(
    page: Path, target: str, options: dict[str, str]
) -> None:
    path = (page.parent / target).resolve()
    assert path.is_file(), f"{page.name} includes missing {target}"
    lines = path.read_text().splitlines()
    start, end = options.get("start-after"), options.get("end-before")
    assert start, f"{page.name}: include {target} between markers (start-after), not whole"
    assert end, f"{page.name}: include {target} between markers (end-before), not whole"
    starts = [i for i, line in enumerate(lines) if line.strip() == f"# {start}"]
    ends = [i for i, line in enumerate(lines) if line.strip() == f"# {end}"]
    assert len(starts) == 1, f"{target}: '# {start}' appears {len(starts)} times"
    assert len(ends) == 1, f"{target}: '# {end}' appears {len(ends)} times"
    assert starts[0] < ends[0], f"{target}: {end} comes before {start}"
    assert start.replace("START", "END") == end, f"{page.name}: {start} ends at {end}"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```(?:python|py|python3)\s*\n(.*?)^```", text, re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_pastes_a_dag(page: Path) -> None:
    for block in python_blocks(page.read_text()):
        for sign in ("DAG(", "@dag"):
            assert sign not in block, (
                f"{page.name} pastes a DAG ({sign}): put it in example_dags/ and include it"
            )


def test_the_pasted_dag_check_sees_one() -> None:
    text = "x\n```python\nwith DAG(dag_id='x'):\n    pass\n```\n```{literalinclude} a.py\n```\n"
    (block,) = python_blocks(text)
    assert "DAG(" in block


def test_every_included_example_dag_is_run_by_a_test() -> None:
    included = {
        Path(target).name
        for page, target, _ in (p.values for p in INCLUDES)
        if "example_dags/" in target
    }
    assert included
    tests = "\n".join(path.read_text() for path in (REPO / "tests" / "system").rglob("*.py"))
    not_run = sorted(name for name in included if Path(name).stem not in tests)
    assert not not_run, f"example DAGs shown in the docs that no test runs: {not_run}"


def test_the_toctree_holds_every_page() -> None:
    entries: set[str] = set()
    text = (DOCS / "index.md").read_text()
    for match in _DIRECTIVE.finditer(text):
        if match.group("name") == "toctree":
            body = _OPTION.sub("", match.group("body"))
            entries |= {line.strip() for line in body.splitlines() if line.strip()}
    pages = {page.stem for page in PAGES} - {"index"}
    assert entries == pages


def test_the_testing_page_lists_the_demo_instances() -> None:
    text = (DOCS / "testing.md").read_text()
    scenario = json.loads(DEMO_SCENARIO_PATH.read_text())
    for instance in scenario["instances"]:
        row = next(
            (line for line in text.splitlines() if f"`{instance['instance_id']}`" in line), None
        )
        assert row is not None, f"docs/testing.md does not list {instance['instance_id']}"
        assert instance["name"] in row
        flavor = instance["flavor"]
        assert f"`{flavor['type']}` x {flavor['size']}" in row
