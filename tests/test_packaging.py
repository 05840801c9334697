"""The wheel: LICENSE, py.typed, the kernel sources, one version, ninja as a core dependency."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import learnact

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=240)
    (path,) = out.glob("learnact-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode()


def test_wheel_ships_license_and_type_marker(wheel):
    names = wheel.namelist()
    assert "learnact/py.typed" in names
    (lic,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(lic).decode() == (ROOT / "LICENSE").read_text()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "License-Expression: MIT" in _metadata(wheel)


def test_wheel_ships_the_kernel_sources_and_presets(wheel):
    names = set(wheel.namelist())
    for src in ("dual_line_cpu.cpp", "recipe_cpu.cpp", "kernel_common.h", "simd.h"):
        assert f"learnact/kernels/{src}" in names
    assert any(n.startswith("learnact/study/presets/") for n in names)


def test_one_version(wheel):
    assert f"\nVersion: {learnact.__version__}\n" in _metadata(wheel)
    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "\nversion =" not in text.split("[tool")[0]
    assert f"## {learnact.__version__.removesuffix('.dev0')}" in (ROOT / "CHANGELOG.md").read_text()


def test_ninja_is_a_core_dependency(wheel):
    requires = [line for line in _metadata(wheel).splitlines() if line.startswith("Requires-Dist")]
    assert any(line.startswith("Requires-Dist: ninja") and "extra" not in line
               for line in requires), requires
