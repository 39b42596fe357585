"""The JavaScript the site needs (Mermaid, KaTeX), taken from npm at build time.

The site must work offline, so nothing is loaded from a CDN: each package is
fetched once with ``npm pack`` (which uses npm's own cache when offline), its
tarball is checked against the pinned integrity hash (the one the npm registry
publishes), and the few files the site needs are unpacked into the build cache.
The build then serves them from ``assets/vendor/`` inside the site.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .paths import cache_dir


class VendorError(RuntimeError):
    """A JavaScript package could not be fetched or did not match its pin."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # `npm view NAME@VERSION dist.integrity`
    files: tuple[str, ...]  # paths (globs allowed) inside the tarball's package/ folder

    @property
    def site_dir(self) -> str:
        return f"assets/vendor/{self.name}"


# Mermaid 11 is the major version mkdocs-material's integration is written for.
MERMAID = Package(
    "mermaid",
    "11.12.0",
    "sha512-ZudVx73BwrMJfCFmSSJT84y6u5brEoV8DOItdHomNLz32uBjNrelm7mg95X7g+C6UoQH/W6mBLGDEDv73JdxBg==",
    ("dist/mermaid.min.js", "LICENSE"),
)
KATEX = Package(
    "katex",
    "0.16.22",
    "sha512-XCHRdUw4lf3SKBaJe4EvgqIuWwkPSo9XoeO8GjQW94Bp7TWv9hNhzZjZ+OH9yf1UmLygb7DIT5GSFQiyt16zYg==",
    ("dist/katex.min.js", "dist/katex.min.css", "dist/contrib/auto-render.min.js", "dist/fonts/*.woff2", "LICENSE"),
)
PACKAGES = (MERMAID, KATEX)


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_pack(package: Package, destination: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(
            f"npm is not installed, and the docs need {package.name}@{package.version} from npm: the site serves "
            "Mermaid and KaTeX itself so that it works offline (no CDN). Install Node.js and npm "
            "(Debian: apt-get install npm), then build again; the packages are cached in "
            f"{cache_dir('npm')} after the first build."
        )
    spec = f"{package.name}@{package.version}"
    try:
        subprocess.run(
            [npm, "pack", spec, "--silent", "--pack-destination", str(destination)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.CalledProcessError as error:
        raise VendorError(
            f"`npm pack {spec}` failed (exit {error.returncode}): {error.stderr.strip() or error.stdout.strip()}; "
            "the docs need it to serve Mermaid/KaTeX offline: check the network or npm's cache"
        ) from None
    except subprocess.TimeoutExpired:
        raise VendorError(f"`npm pack {spec}` did not finish in 300 s; check the network or npm's cache") from None
    tarballs = list(destination.glob("*.tgz"))
    if len(tarballs) != 1:
        raise VendorError(f"`npm pack {spec}` left {len(tarballs)} tarballs in {destination}, expected one")
    return tarballs[0]


def ensure(package: Package) -> Path:
    """The folder holding ``package``'s needed files, fetching them with npm on first use."""
    target = cache_dir("npm") / f"{package.name}-{package.version}"
    if (target / ".complete").exists():
        return target
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        tarball = _npm_pack(package, Path(scratch))
        actual = _integrity(tarball)
        if actual != package.integrity:
            raise VendorError(
                f"{tarball.name}: integrity {actual} differs from the pinned {package.integrity}; refusing to use it"
            )
        unpacked = Path(scratch) / "package"
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                inner = member.name.removeprefix("package/")
                if member.isfile() and any(fnmatch.fnmatch(inner, pattern) for pattern in package.files):
                    archive.extract(member, scratch, filter="data")
        for pattern in package.files:
            if not list(unpacked.glob(pattern)):
                raise VendorError(f"{package.name}@{package.version} has no file matching {pattern!r}")
        (unpacked / ".complete").write_text(package.integrity + "\n")
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def site_files() -> dict[str, Path]:
    """Every vendored file: its path in the site → its path in the cache."""
    files = {}
    for package in PACKAGES:
        folder = ensure(package)
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name != ".complete":
                relative = path.relative_to(folder).as_posix().removeprefix("dist/")
                files[f"{package.site_dir}/{relative}"] = path
    return files


# What the pages load, in order (paths inside the site).
JAVASCRIPT = (
    "assets/vendor/katex/katex.min.js",
    "assets/vendor/katex/contrib/auto-render.min.js",
    "assets/vendor/mermaid/mermaid.min.js",
)
CSS = ("assets/vendor/katex/katex.min.css",)
