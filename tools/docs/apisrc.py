"""The installed package layout, as a tree of symbolic links, for mkdocstrings to read.

The distribution maps folders of the checkout onto one import namespace
(``[tool.setuptools.package-dir]`` in pyproject.toml: ``spec/`` is
``transformer_spec.spec``, ``backends/`` is ``transformer_spec.backends``, ...).
Python imports it through the editable-install finder, but griffe (which
mkdocstrings uses) reads folders, and ``transformer_spec/backends`` does not
exist as a folder. So the build lays out ``build/api-src/`` the way an
installed wheel would be, with links back into the checkout, and points
mkdocstrings there (``paths:`` in mkdocs.yml).
"""

from __future__ import annotations

import shutil

import tomllib

from .paths import ROOT

API_SRC = ROOT / "build" / "api-src"


def package_dirs() -> dict[str, str]:
    """Import name → folder of the checkout, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["setuptools"]["package-dir"]


def lay_out() -> None:
    """(Re)build ``build/api-src/`` from pyproject.toml and the current files of the checkout."""
    shutil.rmtree(API_SRC, ignore_errors=True)
    mapping = package_dirs()
    # Longest names last: a subpackage's link goes inside its parent's folder of links.
    for name, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        target = API_SRC.joinpath(*name.split("."))
        if any(other != name and other.startswith(name + ".") for other in mapping):
            # a package with remapped subpackages: a real folder, its own entries linked one by one
            target.mkdir(parents=True, exist_ok=True)
            for entry in (ROOT / folder).iterdir():
                if entry.name != "__pycache__" and not (target / entry.name).exists():
                    (target / entry.name).symlink_to(entry)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(ROOT / folder)
