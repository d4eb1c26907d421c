"""The installed artifact: what ``pip install`` put on disk is what runs.

These checks are about the package as installed (a wheel, or a build from
the sdist), not about the engines' behaviour:

* without ``MICROGRAD_FAST_NO_EXTENSIONS`` the compiled core is a real
  extension module (a platform suffix such as ``.cpython-311-x86_64-linux-gnu.so``
  or ``.pyd``) and it is the ``Value`` everyone gets;
* the distribution's metadata matches the package's ``__version__``;
* the typing information (``py.typed``, ``_engine.pyi``, ``engine.pyi``) is
  installed.

With ``MICROGRAD_FAST_TEST_INSTALLED=1`` (set by CI and cibuildwheel when
the suite runs against a freshly installed wheel) the package must also be
imported from site-packages, never from the source tree next to these tests,
and the installed package must hold no Cython sources or generated C.
"""

import importlib
import importlib.machinery
import importlib.metadata
import os
import sysconfig
from pathlib import Path

import pytest

import micrograd_fast
import micrograd_fast.engine

NO_EXTENSIONS = os.environ.get("MICROGRAD_FAST_NO_EXTENSIONS", "") not in ("", "0")
TEST_INSTALLED = os.environ.get("MICROGRAD_FAST_TEST_INSTALLED", "") not in ("", "0")

PACKAGE_DIR = Path(micrograd_fast.__file__).resolve().parent
SOURCE_PACKAGE_DIR = Path(__file__).resolve().parent.parent / "micrograd_fast"
DIST_NAME = "micrograd-fast"

needs_compiled = pytest.mark.skipif(
    NO_EXTENSIONS, reason="MICROGRAD_FAST_NO_EXTENSIONS is set"
)
needs_installed = pytest.mark.skipif(
    not TEST_INSTALLED, reason="MICROGRAD_FAST_TEST_INSTALLED is not set"
)


def _site_dirs():
    dirs = set()
    for scheme_path in ("purelib", "platlib"):
        dirs.add(Path(sysconfig.get_paths()[scheme_path]).resolve())
    return dirs


@needs_compiled
def test_compiled_core_is_an_extension_module():
    engine = importlib.import_module("micrograd_fast._engine")
    path = engine.__file__
    assert path is not None
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert path.endswith(suffixes), (
        f"micrograd_fast._engine was loaded from {path!r}, which is not a compiled "
        f"extension (expected one of {suffixes})"
    )
    assert isinstance(engine.__loader__, importlib.machinery.ExtensionFileLoader)
    assert Path(path).resolve().parent == PACKAGE_DIR


@needs_compiled
def test_installed_package_uses_the_compiled_core():
    engine = importlib.import_module("micrograd_fast._engine")
    assert micrograd_fast.engine.Value is engine.Value
    assert micrograd_fast.Value is engine.Value
    assert engine.COMPILED is True
    assert micrograd_fast.COMPILED is True
    # and it computes: a tiny graph through the compiled Value
    x = engine.Value(3.0)
    y = (x * x + 1).tanh()
    y.backward()
    assert type(y) is engine.Value
    assert x.grad != 0.0


def test_distribution_metadata_matches_the_package():
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        if TEST_INSTALLED:
            raise
        pytest.skip(f"the {DIST_NAME} distribution is not installed")
    assert dist.version == micrograd_fast.__version__
    assert dist.metadata["Name"] == DIST_NAME
    assert dist.metadata["Requires-Python"] == ">=3.10"


def test_typing_information_is_installed():
    assert (PACKAGE_DIR / "py.typed").is_file()
    assert (PACKAGE_DIR / "_engine.pyi").is_file()
    assert (PACKAGE_DIR / "engine.pyi").is_file()


@needs_installed
def test_package_is_imported_from_site_packages():
    assert PACKAGE_DIR != SOURCE_PACKAGE_DIR.resolve(), (
        "micrograd_fast was imported from the source tree, not from the installed wheel"
    )
    site_dirs = _site_dirs()
    assert PACKAGE_DIR.parent in site_dirs, (
        f"micrograd_fast was imported from {PACKAGE_DIR}, outside site-packages "
        f"({sorted(map(str, site_dirs))})"
    )


@needs_installed
def test_installed_package_holds_no_build_sources():
    leftovers = sorted(
        p.name
        for p in PACKAGE_DIR.iterdir()
        if p.suffix in (".pyx", ".pxd", ".c", ".h", ".html")
    )
    assert leftovers == []


@needs_installed
def test_console_script_is_the_command():
    from micrograd_fast.lab import cli

    dist = importlib.metadata.distribution(DIST_NAME)
    (script,) = [ep for ep in dist.entry_points if ep.name == "micrograd-fast"]
    assert script.group == "console_scripts"
    assert script.value == "micrograd_fast.lab.cli:main"
    assert script.load() is cli.main
