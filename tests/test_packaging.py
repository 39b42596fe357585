"""The installed distribution claims one import name of its own, and lives beside distributions that own `spec`/`backends`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import tomllib

from .conftest import ROOT

FOLDERS = {"transformer_spec": "transformer_spec", "spec": "transformer_spec.spec", "backends": "transformer_spec.backends",
           "conformance": "transformer_spec.conformance"}  # fmt: skip


def test_every_package_folder_is_installed_under_the_namespace():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == declared, f"folders not installed: {sorted(found - declared)}; listed but absent: {sorted(declared - found)}"


def run(*command: str, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_the_wheel_installs_beside_distributions_that_own_spec_and_backends(tmp_path):
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # a copy of the checkout, so that setuptools' build/ folder lands there, not here
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "site", "build", "*.egg-info", "__pycache__", ".*cache*")
    )
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source))
    other = tmp_path / "other-distribution"  # someone else's distribution with the generic names
    for name in ("spec", "backends"):
        (other / name).mkdir(parents=True)
        (other / name / "__init__.py").write_text(f"OWNER = 'other-{name}'\n")
    (other / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "other-spec-backends"
        version = "1.0"
        [tool.setuptools]
        packages = ["spec", "backends"]
        """)
    )
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(other))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
        *map(str, sorted(wheels.glob("*.whl"))))  # fmt: skip
    # NumPy, safetensors and friends come from this environment's site-packages, read as a plain path (its .pth
    # files, among them the editable install of this checkout, are not processed that way).
    dependencies = sysconfig.get_paths()["purelib"]
    check = textwrap.dedent("""
        import spec, backends
        import transformer_spec, transformer_spec.spec.errors, transformer_spec.backends.base, transformer_spec.conformance.registry
        from transformer_spec.backends import load_backend
        assert spec.OWNER == "other-spec" and backends.OWNER == "other-backends"
        assert transformer_spec.__file__.startswith(VENV), transformer_spec.__file__
        print(load_backend("numpy").name)
        """).replace("VENV", repr(str(venv)))  # fmt: skip
    done = run(str(python), "-c", check, cwd=tmp_path, env={"PYTHONPATH": dependencies, "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "numpy"


def test_an_old_import_names_the_new_path(tmp_path):
    """A backend written against 0.1 (`from backends.base import Backend`) is told where the module went."""
    old = "import transformer_spec\nfrom backends.base import Backend\n"
    done = subprocess.run([sys.executable, "-c", old], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "transformer-spec 0.2 moved it to 'transformer_spec.backends'" in done.stderr
    assert "from transformer_spec.backends.base import Backend" in done.stderr
