"""The README and the docs' pages, tested like code: their fenced blocks, links and names must
match the package.

The checks are generic, so that new README sections are tested without touching this file:

- every ``python`` block parses; what it imports from ``airflow_provider_iotda`` exists; every
  keyword it passes to one of those names (and to methods of an object built from one)
  is a real parameter;
- every ``json`` block parses; one preceded by ``<!-- readme-test: scenario -->`` is loaded
  as a simulator scenario;
- in ``bash`` blocks: ``export AIRFLOW_CONN_...='...'`` values build a valid connection,
  ``airflow ...`` commands parse with Airflow's CLI parser, ``python -m
  airflow_provider_iotda.simulator ...`` with the simulator's, ``make X`` names a Makefile
  target, ``pip install airflow-provider-iotda[x]`` names a real extra, and a JSON body sent
  to ``/api/v2/connections/test`` is a valid Airflow connection body;
- a ``python`` block preceded by ``<!-- readme-test: example_dags/FILE.py NAME -->`` is the
  code of that example DAG between its ``# [START NAME]`` / ``# [END NAME]`` markers, verbatim
  (the README is the package index's page: it cannot include files, so it is checked instead);
- the README has no relative links (they are dead on the package index and in the sdist);
  every connection extra is documented on the connection page.

``<!-- readme-test: skip -->`` before a block exempts it (say why next to it).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_iotda.config import (
    DEPRECATED_EXTRA_FIELDS,
    EXTRA_FIELDS,
    IoTDAConnectionConfig,
)

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
#: The pages whose blocks are checked: the README and the Sphinx pages.
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
PACKAGE = "airflow_provider_iotda"


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int
    tag: str | None
    source: str = "README.md"

    def __str__(self) -> str:
        return f"{self.source}:{self.line} ({self.language})"


_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_TAG = re.compile(r"^<!--\s*readme-test:\s*(.+?)\s*-->\s*$")


def readme_blocks(text: str, source: str = "README.md") -> list[Block]:
    """The fenced blocks of a Markdown text, each with the tag on the line before it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        tag = None
        previous = index - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        if previous >= 0 and (tag_match := _TAG.match(lines[previous].strip())):
            tag = tag_match.group(1)
        indent = match.group(1)
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        # A block inside a list item is indented: drop the fence's indentation.
        body = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
        blocks.append(Block(match.group(2) or "text", body, index + 2, tag, source))
        index = end + 1
    return blocks


BLOCKS = [
    block
    for page in PAGES
    for block in readme_blocks(page.read_text(), str(page.relative_to(REPO)))
    if block.tag != "skip"
]


def _blocks(language: str) -> list[Any]:
    return [pytest.param(b, id=f"{b.source}:{b.line}") for b in BLOCKS if b.language == language]


def test_the_pages_have_blocks_of_each_kind() -> None:
    """A guard for the parser: the examples are really seen, the README's among them."""
    kinds = {b.language for b in BLOCKS}
    assert {"python", "bash", "json"} <= kinds
    assert {b.language for b in BLOCKS if b.source == "README.md"} >= {"python", "bash"}
    assert any(b.tag and b.tag.startswith("example_dags/") for b in BLOCKS)


# -- python ---------------------------------------------------------------------------------------


def _imported(tree: ast.Module) -> dict[str, Any]:
    """Names imported from the package, resolved to the objects."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def _parameters(target: Any) -> tuple[set[str], bool]:
    """Keyword names a callable accepts (a class: every ``__init__`` of its MRO), and whether
    it takes ``**kwargs`` with no class further up to name them."""
    if inspect.isclass(target):
        names: set[str] = set()
        for klass in target.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            params = inspect.signature(init).parameters.values()
            names |= {p.name for p in params if p.kind is not p.VAR_KEYWORD}
        return names, False
    params = inspect.signature(target).parameters.values()
    return (
        {p.name for p in params if p.kind is not p.VAR_KEYWORD},
        any(p.kind is p.VAR_KEYWORD for p in params),
    )


def _check_keywords(call: ast.Call, target: Any, what: str, block: Block) -> None:
    accepted, open_ended = _parameters(target)
    for keyword in call.keywords:
        if keyword.arg is not None and not open_ended:
            assert keyword.arg in accepted, (
                f"{block}: {what} has no parameter {keyword.arg!r} (line {call.lineno})"
            )


@pytest.mark.parametrize("block", _blocks("python"))
def test_python_blocks_use_real_names_and_parameters(block: Block) -> None:
    tree = ast.parse(block.text, filename=str(block))
    names = _imported(tree)
    for node in ast.walk(tree):  # pytest_plugins = ["..."] must name importable modules
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            for plugin in ast.literal_eval(node.value):
                importlib.import_module(plugin)
    instances: dict[str, Any] = {}  # variable -> class, for ``x = Class(...)``
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and inspect.isclass(names.get(node.value.func.id))
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    instances[target.id] = names[node.value.func.id]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            _check_keywords(node, names[func.id], func.id, block)
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in instances
        ):
            klass = instances[func.value.id]
            assert hasattr(klass, func.attr), f"{block}: {klass.__name__} has no {func.attr}"
            _check_keywords(node, getattr(klass, func.attr), f"{klass.__name__}.{func.attr}", block)


def marked_region(path: Path, name: str) -> str:
    """The lines of ``path`` between ``# [START name]`` and ``# [END name]``, dedented, without
    the marker lines of regions nested in it (the docs' build drops them too)."""
    import textwrap

    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    ends = [i for i, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    assert len(starts) == 1, f"{path.name}: {len(starts)} '# [START {name}]' marker(s)"
    assert len(ends) == 1, f"{path.name}: {len(ends)} '# [END {name}]' marker(s)"
    assert starts[0] < ends[0], f"{path.name}: END {name} before START"
    region = lines[starts[0] + 1 : ends[0]]
    nested = re.compile(r"^\s*# \[(START|END) [\w-]+\]\s*$")
    return textwrap.dedent("\n".join(line for line in region if not nested.match(line)))


@pytest.mark.parametrize(
    "block",
    [b for b in _blocks("python") if (b.values[0].tag or "").startswith("example_dags/")],
)
def test_python_blocks_copied_from_example_dags_are_verbatim(block: Block) -> None:
    file_name, name = (block.tag or "").split()
    path = REPO / file_name
    assert path.is_file(), f"{block}: no {file_name}"
    assert block.text.strip() == marked_region(path, name).strip(), (
        f"{block} differs from {file_name} between the markers {name}: copy the file's code"
    )


# -- json -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _blocks("json"))
def test_json_blocks_parse(block: Block) -> None:
    value = json.loads(block.text)
    if block.tag == "scenario":
        from airflow_provider_iotda.simulator.scenario import Scenario

        assert Scenario.from_dict(value).instances


# -- bash -----------------------------------------------------------------------------------------


def _bash_commands(block: Block) -> list[list[str]]:
    text = re.sub(r"\\\n\s*", " ", block.text)
    lines: list[list[str]] = []
    for line in _logical_lines(text):
        words = shlex.split(line, comments=True)
        if words:
            lines.append(words)
    return lines


def _logical_lines(text: str) -> list[str]:
    """Lines, where a quoted string may span several."""
    lines: list[str] = []
    current = ""
    for line in text.splitlines():
        current = f"{current}\n{line}" if current else line
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the value goes on
            continue
        lines.append(current)
        current = ""
    assert not current, f"unterminated quote in: {current!r}"
    return lines


def _without_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0], re.DOTALL):
        name, _, value = words[0].partition("=")
        env[name] = value
        words = words[1:]
    return env, words


def _connection_from_env_value(conn_id: str, value: str) -> Any:
    from airflow.models.connection import Connection

    if value.lstrip().startswith("{"):
        data = json.loads(value)
        extra = data.pop("extra", None)
        if isinstance(extra, dict):
            extra = json.dumps(extra)
        return Connection(conn_id=conn_id, extra=extra, **data)
    return Connection(conn_id=conn_id, uri=value)


def _check_export(words: list[str], block: Block) -> None:
    for assignment in words[1:]:
        name, _, value = assignment.partition("=")
        if name.startswith("AIRFLOW_CONN_"):
            conn = _connection_from_env_value(name.removeprefix("AIRFLOW_CONN_").lower(), value)
            assert conn.conn_type == "huaweicloud_iotda", f"{block}: {name}"
            IoTDAConnectionConfig.from_connection(conn)


def _check_airflow_cli(words: list[str], block: Block) -> None:
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    try:
        parser.parse_args(words[1:])
    except SystemExit as exc:  # argparse's way of refusing
        raise AssertionError(f"{block}: Airflow's CLI refuses {shlex.join(words)}") from exc


def _check_simulator_cli(words: list[str], block: Block) -> None:
    from airflow_provider_iotda.simulator.__main__ import build_parser

    try:
        build_parser().parse_args(words[3:])
    except SystemExit as exc:
        raise AssertionError(f"{block}: the simulator refuses {shlex.join(words)}") from exc


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


def _our_extras() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(project.get("optional-dependencies", {}))


def _check_pip(words: list[str], block: Block) -> None:
    for word in words[2:]:
        match = re.fullmatch(r"airflow-provider-iotda(?:\[([\w,-]+)\])?(?:[<>=!~].*)?", word)
        if match and match.group(1):
            unknown = set(match.group(1).split(",")) - _our_extras()
            assert not unknown, f"{block}: no extra {unknown} in pyproject.toml"


def _check_curl(words: list[str], block: Block) -> None:
    urls = [w for w in words if "/api/v2/connections/test" in w]
    if not urls:
        return
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionBody

    data = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-d", "--data")]
    assert data, f"{block}: the test call needs the connection in its body"
    body = ConnectionBody.model_validate(json.loads(data[0]))
    assert body.conn_type == "huaweicloud_iotda"


@pytest.mark.parametrize("block", _blocks("bash"))
def test_bash_blocks_use_real_commands(block: Block) -> None:
    for line in _bash_commands(block):
        env, words = _without_env(line)
        for name, value in env.items():
            if name.startswith("AIRFLOW_CONN_"):
                _check_export(["export", f"{name}={value}"], block)
        if not words:
            continue
        if words[0] == "export":
            _check_export(words, block)
        elif words[0] == "airflow":
            _check_airflow_cli(words, block)
        elif words[:3] == ["python", "-m", f"{PACKAGE}.simulator"]:
            _check_simulator_cli(words, block)
        elif words[0] == "make":
            assert set(words[1:]) <= _makefile_targets(), f"{block}: {shlex.join(words)}"
        elif words[:2] == ["pip", "install"]:
            _check_pip(words, block)
        elif words[0] == "curl":
            _check_curl(words, block)


# -- prose ----------------------------------------------------------------------------------------


_LINK = re.compile(r"\]\(\s*<?([^)>\s]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)


def relative_links(text: str) -> list[str]:
    """Link and image targets that are not absolute URLs (Markdown, reference and HTML forms)."""
    targets = [*_LINK.findall(text), *_HTML_LINK.findall(text), *_REFERENCE.findall(text)]
    return [t for t in targets if not re.match(r"^(https?://|mailto:)", t)]


def test_the_readme_has_no_relative_links() -> None:
    """The README is the package index's long description: relative links are dead there and
    in the sdist, so paths are named as code and links are absolute URLs."""
    assert relative_links(README.read_text()) == []


def test_the_relative_link_check_sees_each_form() -> None:
    text = (
        "[a](docs/x.md) [b](https://example.org/b) ![c](img.png) [d](#anchor)\n"
        '<a href="LICENSE">e</a> <img src="https://example.org/i.png">\n'
        "[ref]: docs/ref.md\n"
    )
    assert relative_links(text) == ["docs/x.md", "img.png", "#anchor", "LICENSE", "docs/ref.md"]


def test_every_connection_extra_is_documented() -> None:
    text = (REPO / "docs" / "connection.md").read_text()
    for name in (*EXTRA_FIELDS, *DEPRECATED_EXTRA_FIELDS):
        assert f"`{name}`" in text, f"docs/connection.md does not mention extra {name!r}"


# -- the checks themselves ------------------------------------------------------------------------


def test_the_block_parser_finds_tags_and_lines() -> None:
    text = (
        "intro\n\n<!-- readme-test: exec -->\n```python\nx = 1\n```\n\n"
        "- item\n\n  ```bash\n  make demo\n  ```\n"
    )
    first, second = readme_blocks(text)
    assert (first.language, first.text, first.line, first.tag) == ("python", "x = 1", 5, "exec")
    assert (second.language, second.text, second.tag) == ("bash", "make demo", None)


def test_the_checks_catch_a_wrong_parameter_and_a_wrong_flag() -> None:
    bad_python = Block(
        "python",
        "from airflow_provider_iotda.hooks.iotda import IoTDAHook\n"
        "hook = IoTDAHook(iotda_conn_id='x')\nhook.list_instance_tasks(progress=True)\n",
        1,
        None,
    )
    with pytest.raises(AssertionError, match="has no parameter 'progress'"):
        test_python_blocks_use_real_names_and_parameters(bad_python)
    bad_bash = Block(
        "bash", "python -m airflow_provider_iotda.simulator --ak A --colour red", 1, None
    )
    with pytest.raises(AssertionError, match="the simulator refuses"):
        test_bash_blocks_use_real_commands(bad_bash)
    bad_conn = Block(
        "bash",
        'export AIRFLOW_CONN_X=\'{"conn_type": "huaweicloud_iotda", "login": "a", '
        '"password": "b", "extra": {"region": "CN North 4", "project_id": "p"}}\'',
        1,
        None,
    )
    with pytest.raises(ValueError, match="extra region must be"):
        test_bash_blocks_use_real_commands(bad_conn)
