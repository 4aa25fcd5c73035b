"""Packaging: ``pip install .`` must give a Dask scheduler or worker (and the workbench) everything it imports and
reads. The wheel is built as pip builds it (``pip wheel . --no-deps``, build isolation) from a copy of the project
files, so the working tree gets no ``build/`` or ``*.egg-info`` and the check cannot pass on files lying around."""
from __future__ import annotations

import email
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.attribution import attribute
from core.inventory import largest_emitters
from core.paths import REPO_ROOT
from core.settings import DetectionSettings
from core.track import KM_PER_DEG

PACKAGES = ("core", "workbench")
#: Read at run time by the installed code (the simulator's XCO2 background, the embedded inventory; the basemap
#: style and outlines).
DATA_FOLDERS = ("core/data", "workbench/static")
#: What a build needs besides the packages (pyproject.toml reads the dependencies from requirements.txt).
BUILD_FILES = ("pyproject.toml", "requirements.txt")
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def _project_files(folder: str) -> list[str]:
    """The files of a folder of the project, as a clean clone has them (no byte code)."""
    root = REPO_ROOT / folder
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    for name in BUILD_FILES:
        shutil.copy(REPO_ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                          "-q", "-w", str(work / "dist"), str(source)],
                         capture_output=True, text=True, cwd=work, env=ENV, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (built,) = (work / "dist").glob("oco2peak_workbench-*.whl")
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(path).decode()


def test_the_wheel_holds_every_module_of_core_and_workbench(wheel):
    names = _names(wheel)
    modules = [f for package in PACKAGES for f in _project_files(package) if f.endswith(".py")]
    assert "core/batch.py" in modules and "workbench/views/overview.py" in modules
    assert [m for m in modules if m not in names] == []
    # nothing else at the top level: no tests, bench or cache folders installed into site-packages
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == set(PACKAGES)


def test_the_wheel_holds_the_data_files_the_code_reads(wheel):
    names = _names(wheel)
    data = [f for folder in DATA_FOLDERS for f in _project_files(folder)]
    assert {"core/data/xco2_monthly_mean.csv", "core/data/inventory/sources.parquet", "workbench/static/basemap.json",
            "workbench/static/ne_110m_countries.geojson"} <= set(data)
    assert [f for f in data if f not in names] == []


def test_the_wheel_requires_the_pinned_runtime_stack_and_names_the_command(wheel):
    metadata = email.message_from_string(_dist_info(wheel, "METADATA"))
    pinned = [line.strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    assert metadata.get_all("Requires-Dist") == pinned
    assert metadata["Requires-Python"] == ">=3.11"
    assert "oco2peak = core.cli:main" in _dist_info(wheel, "entry_points.txt")


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> SimpleNamespace:
    """The wheel installed by pip (``--no-deps``) into a fresh virtual environment outside the repository, which
    sees the rest of the stack through a ``.pth`` line naming this environment's site-packages (appended after its
    own, so its ``core`` is the wheel's; the editable install's finder is not loaded: that ``.pth`` is not run)."""
    root = tmp_path_factory.mktemp("venv")
    run = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    python = root / "env" / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(subprocess.run([str(python), "-c", purelib], capture_output=True, text=True, env=ENV,
                                        check=True).stdout.strip())
    (site_packages / "_outer_stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                          "--disable-pip-version-check", "-q", str(wheel)],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return SimpleNamespace(python=python, site_packages=site_packages)


def _in_installed(installed: SimpleNamespace, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` with the fresh environment's Python in an empty folder outside the repository, without
    ``PYTHONPATH`` or ``OCO2_CACHE``."""
    outside = installed.python.parent.parent.parent / "cwd"
    outside.mkdir(exist_ok=True)
    env = {name: value for name, value in ENV.items() if name not in ("OCO2_CACHE", "VIRTUAL_ENV")}
    return subprocess.run([str(installed.python), "-c", code], capture_output=True, text=True, cwd=outside,
                          env=env, timeout=120)


def test_the_installed_code_finds_its_data_outside_the_repository(installed):
    run = _in_installed(installed, """
import core, core.osse_physics, core.simulate, workbench.basemap, workbench.ui
print(core.__file__)
assert core.osse_physics.MONTHLY_MEAN_CSV.is_file(), core.osse_physics.MONTHLY_MEAN_CSV
assert (workbench.basemap.STATIC / "basemap.json").is_file()
assert (workbench.basemap.STATIC / "ne_110m_countries.geojson").is_file()
assert (workbench.ui.VIEWS / "overview.py").is_file()
""")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(installed.site_packages / "core" / "__init__.py")


def test_the_installed_code_attributes_with_the_embedded_inventory_outside_the_repository(installed):
    """From an empty folder, the installed package finds its embedded inventory (package data), defaults its cache
    to ``./data_cache`` and attributes an event 25 km downwind of the largest emitter to it, exactly as the
    checkout does."""
    top = largest_emitters(1).iloc[0]
    lat, lon = float(top["latitude"]), float(top["longitude"]) + 25 / (KM_PER_DEG * np.cos(np.radians(top["latitude"])))
    events = pd.DataFrame({"latitude": [lat], "longitude": [lon], "wind_u_ms": [5.0], "wind_v_ms": [0.0],
                           "emission_gCO2_s": [1.0e6], "emission_gCO2_s_stderr": [2.0e5]})
    run = _in_installed(installed, f"""
from pathlib import Path
import pandas as pd
import core.paths
from core.attribution import attribute
from core.inventory import sources_path
from core.settings import DetectionSettings
print(core.paths.__file__)
assert not core.paths.IN_CHECKOUT
assert core.paths.cache_root() == Path.cwd() / "data_cache", core.paths.cache_root()
assert sources_path() == core.paths.EMBEDDED_INVENTORY / "sources.parquet", sources_path()
assert sources_path().is_file(), sources_path()
events = pd.DataFrame({events.to_dict(orient="list")!r})
print(attribute(events, DetectionSettings()).to_json(orient="records", double_precision=15))
""")
    assert run.returncode == 0, run.stderr
    where, found = run.stdout.strip().splitlines()
    assert where == str(installed.site_packages / "core" / "paths.py")
    assert not (installed.python.parent.parent.parent / "cwd" / "data_cache").exists()  # nothing written
    found = pd.read_json(io.StringIO(found), orient="records")
    assert found["source_id"].tolist() == [top["source_id"]]
    assert found["source_distance_km"].iloc[0] == pytest.approx(25, abs=0.5)
    here = attribute(events, DetectionSettings())
    pd.testing.assert_frame_equal(found[list(here.columns)], here, check_dtype=False)
