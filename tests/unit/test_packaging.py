"""The release (issue 21): pyproject metadata, the sdist and the wheel as built from a copy of the
source tree, and the boundary of the ``simulator`` extra (starlette and uvicorn).

The build runs offline (``python -m build --no-isolation`` with the setuptools of the ``release``
extra); ``make dist`` builds the same way but in an isolated environment, as pip does for users.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from airflow_provider_iotda.simulator.server import SERVER_PACKAGES, SIMULATOR_EXTRA_INSTALL

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "airflow_provider_iotda"
LOCKS = sorted((REPO / "requirements").glob("airflow-*-lock.txt"))
#: sha256 of https://www.apache.org/licenses/LICENSE-2.0.txt (the verbatim text).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
#: The modules that may import starlette or uvicorn (the others must work without the extra).
SERVER_MODULES = {"simulator/app.py", "simulator/server.py"}
#: Not copied into the build: what git ignores, and the build's own output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "dist",
    "build",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "demo-output",
    "_build",
)
#: What the sdist holds at its top level (MANIFEST.in): no CI scripts, no benchmarks.
SDIST_TOP = {
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
    "Makefile",
    "PKG-INFO",
    "README.md",
    "airflow_provider_iotda",
    "airflow_provider_iotda.egg-info",
    "demo",
    "docs",
    "example_dags",
    "pyproject.toml",
    "requirements",
    "setup.cfg",
    "tests",
}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalised project name of a requirement or lock line."""
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


# -- metadata --------------------------------------------------------------------------------------


def test_build_system_floor_reads_the_license_expression() -> None:
    (requirement,) = _pyproject()["build-system"]["requires"]
    setuptools = Requirement(requirement)
    assert setuptools.name == "setuptools"
    # 75.8 fails on `license = "Apache-2.0"`; 77.0 is the first that reads it (PEP 639).
    assert "76.9" not in setuptools.specifier
    assert "77.0" in setuptools.specifier


def test_license_is_the_apache_2_text_and_no_classifier_contradicts_it() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    assert [c for c in project["classifiers"] if c.startswith("License ::")] == []


def test_python_classifiers_agree_with_requires_python() -> None:
    project = _pyproject()["project"]
    supported = SpecifierSet(project["requires-python"])
    versions = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions == ["3.11", "3.12", "3.13"]
    assert all(version in supported for version in versions)
    assert "3.10" not in supported
    assert any(c.startswith("Development Status :: ") for c in project["classifiers"])


def test_starlette_and_uvicorn_are_the_simulator_extra_only() -> None:
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    assert {_name(r) for r in project["dependencies"]}.isdisjoint(SERVER_PACKAGES)
    assert {_name(r) for r in extras["simulator"]} == set(SERVER_PACKAGES)
    # The test extra brings the simulator (the integration tests start it).
    assert "airflow-provider-iotda[simulator]" in extras["test"]
    assert {"build", "setuptools", "twine"} <= {_name(r) for r in extras["release"]}
    # The dev environments (make install, every Airflow line) have both extras.
    (extras_line,) = re.findall(r"^EXTRAS\s*\?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert {"test", "simulator", "release"} <= set(extras_line.split("$(")[0].split(","))


@pytest.mark.parametrize("lock", LOCKS, ids=[p.name for p in LOCKS])
def test_every_lock_pins_the_simulator_and_release_extras(lock: Path) -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    pinned = {
        _name(line.split("==")[0]): line
        for line in lock.read_text().splitlines()
        if line and not line.startswith("#")
    }
    wanted = {_name(r) for r in [*extras["simulator"], *extras["release"]]}
    assert len(LOCKS) == 3
    assert sorted(wanted - set(pinned)) == []
    assert all("==" in pinned[name] for name in wanted)


# -- the simulator extra's boundary ----------------------------------------------------------------


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_simulator_server_imports_starlette_and_uvicorn() -> None:
    importers = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _imported_roots(path) & set(SERVER_PACKAGES)
    }
    assert importers == SERVER_MODULES


def _run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing ``packages`` fails."""
    block = f"import sys\nfor _name in {packages!r}:\n    sys.modules[_name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", block + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_every_module_but_the_server_imports_without_the_extra() -> None:
    result = _run_without(
        SERVER_PACKAGES,
        """
        import importlib, pkgutil
        import airflow_provider_iotda
        names = [m.name for m in pkgutil.walk_packages(
            airflow_provider_iotda.__path__, "airflow_provider_iotda.")]
        for name in names:
            if name != "airflow_provider_iotda.simulator.app":
                importlib.import_module(name)
        print(len(names))
        from airflow_provider_iotda.simulator import IoTDASimulator
        try:
            IoTDASimulator(ak="sim-access-key", sk="sim-secret-key", project_id="p" * 32)
        except ImportError as exc:
            print(exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    count, message = result.stdout.strip().splitlines()
    assert int(count) > 30  # the walk found the package's modules
    assert SIMULATOR_EXTRA_INSTALL in message
    assert "starlette and uvicorn" in message


# -- the built artefacts ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(source copy, sdist, wheel): ``python -m build`` on a copy of the tree (the sdist first,
    then the wheel from the unpacked sdist, as ``make dist`` does)."""
    source = tmp_path_factory.mktemp("source") / "airflow-provider-iotda"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE, symlinks=True)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return source, sdist, wheel


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_twine_check_strict_passes(built: tuple[Path, Path, Path]) -> None:
    _, sdist, wheel = built
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_wheel_holds_the_package_its_data_and_the_license(
    built: tuple[Path, Path, Path],
) -> None:
    source, _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_name) == (REPO / "LICENSE").read_bytes()
        entry_points = archive.read(license_name.replace("licenses/LICENSE", "entry_points.txt"))
    package_files = {
        path.relative_to(source).as_posix()
        for path in (source / "airflow_provider_iotda").rglob("*")
        if path.is_file()
    }
    # Every file of the package: modules and data (py.typed, simulator/*.json, templates/...).
    assert sorted(package_files - names) == []
    assert "airflow_provider_iotda/py.typed" in names
    assert "airflow_provider_iotda/simulator/demo_scenario.json" in names
    version = _pyproject()["project"]["version"]
    tops = {name.split("/")[0] for name in names}
    assert tops == {"airflow_provider_iotda", f"airflow_provider_iotda-{version}.dist-info"}
    assert (
        b"provider_info = airflow_provider_iotda.get_provider_info:get_provider_info"
        in entry_points
    )


def test_wheel_metadata(built: tuple[Path, Path, Path]) -> None:
    _, _, wheel = built
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")] == []
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (REPO / "README.md").read_text().strip()
    server = [
        r
        for r in metadata.get_all("Requires-Dist") or []
        if _name(r.split(";")[0]) in SERVER_PACKAGES
    ]
    assert len(server) == 2
    assert [str(Requirement(r).marker) for r in server] == ['extra == "simulator"'] * 2
    assert "simulator" in (metadata.get_all("Provides-Extra") or [])


def test_sdist_holds_docs_examples_tests_and_no_build_litter(
    built: tuple[Path, Path, Path],
) -> None:
    source, sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert {name.split("/")[0] for name in names} == SDIST_TOP
    assert [n for n in names if "__pycache__" in n or n.endswith(".pyc")] == []
    for folder in ("docs", "example_dags", "tests", "demo", "requirements"):
        files = {p.relative_to(source).as_posix() for p in (source / folder).rglob("*")}
        files = {f for f in files if (source / f).is_file()}
        assert sorted(files - set(names)) == [], folder
