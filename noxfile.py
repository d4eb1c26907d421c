"""The test suite on every CPython interpreter this machine has.

    python -m pip install nox
    nox                      # every session: one per interpreter found
    nox -l                   # list them
    nox -s tests-3.12        # one interpreter
    nox -s tests-3.12 -- -k sum -x     # pytest arguments after --

Which versions: the ``Programming Language :: Python :: 3.X`` classifiers of
``pyproject.toml`` (the versions the wheels claim), plus any newer CPython
that pyenv has.  Each is looked up by nox's own interpreter discovery and in
pyenv's versions directory (``$PYENV_ROOT/versions``, ``~/.pyenv`` by
default), whose interpreters nox does not find by itself when pyenv's shims
select another version.  A version found nowhere gets a session that is
skipped with a message saying so; nothing is downloaded.  Free-threaded
interpreters (``3.13t`` ...) get a session too when one is found.

Each session builds and installs the package from a private copy of this
checkout (so sessions may run side by side) into a fresh virtual environment (``pip install .[test,viz]`` plus upstream ``micrograd``,
so the compiled core is compiled for that interpreter), then runs the tests
from a directory outside the source tree against the installed package, with
``MICROGRAD_FAST_TEST_INSTALLED=1`` (see ``tests/test_installed.py``).

The minutes-long upstream oracle tests (marker ``slow``) run on
``FULL_SUITE_PYTHON`` only; every other interpreter runs ``-m "not slow"``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: The one interpreter that also runs the ``slow`` tests in a plain ``nox``
#: run: the newest of the machine's usual set, the one whose behaviour differs
#: most from the default CPython (3.12 and later sum floats with
#: compensation, for example).  .ci/run passes ``-m "not slow"`` to every
#: session: its first stage has run the slow tests already.
FULL_SUITE_PYTHON = "3.13"

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = False

# where the links to interpreters found outside nox's own discovery live
_LINK_DIR = ROOT / ".nox" / "_interpreters"

_PROBE = (
    "import platform, sys, sysconfig; "
    "print(platform.python_implementation(), sys.version_info[0], sys.version_info[1], "
    "int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))"
)


def _pyproject():
    return (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def _floor():
    m = re.search(r'^requires-python\s*=\s*">=\s*3\.(\d+)', _pyproject(), re.M)
    return int(m.group(1)) if m else 10


def _claimed_minors():
    found = re.findall(r'"Programming Language :: Python :: 3\.(\d+)"', _pyproject())
    return sorted({int(m) for m in found})


def _pyenv_interpreters():
    """``{(minor, free_threaded): path}`` of the newest patch release of each
    CPython 3 in pyenv's versions directory."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    best = {}
    if not root.is_dir():
        return {}
    for entry in root.iterdir():
        m = re.fullmatch(r"3\.(\d+)\.(\d+)(t?)", entry.name)
        if not m:
            continue
        minor, patch, ft = int(m.group(1)), int(m.group(2)), bool(m.group(3))
        exe = entry / "bin" / f"python3.{minor}{'t' if ft else ''}"
        if not exe.is_file():
            continue
        if (minor, ft) not in best or patch > best[(minor, ft)][0]:
            best[(minor, ft)] = (patch, exe)
    return {key: exe for key, (patch, exe) in best.items()}


def _probe(exe, minor, ft):
    """True when ``exe`` runs and is CPython 3.``minor``, free-threaded or not
    as ``ft`` says (a pyenv shim for a version pyenv has not selected fails
    here)."""
    try:
        out = subprocess.run(
            [str(exe), "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    want = f"CPython 3 {minor} {1 if ft else 0}"
    return out.returncode == 0 and out.stdout.strip() == want


def _nox_finds(minor, ft):
    """Whether nox's own discovery finds a working interpreter for 3.``minor``."""
    spec = f"3.{minor}{'t' if ft else ''}"
    try:
        from python_discovery import get_interpreter
    except ImportError:  # older nox: PATH lookup only
        exe = shutil.which(f"python{spec}")
    else:
        try:
            info = get_interpreter(spec)
        except Exception:  # noqa: BLE001 - discovery trouble means "not found"
            info = None
        exe = info.executable if info is not None else None
    return exe is not None and _probe(exe, minor, ft)


def _discover():
    """Session versions found (e.g. ``["3.10", ..., "3.13t"]``) and the
    versions claimed by the classifiers that are found nowhere."""
    pyenv = _pyenv_interpreters()
    floor = _floor()
    claimed = [m for m in _claimed_minors() if m >= floor]
    newest = max(claimed, default=floor)
    extra = [m for (m, ft) in pyenv if not ft and m > newest]
    wanted = [(m, False) for m in sorted(set(claimed) | set(extra))]
    wanted += sorted((m, True) for (m, ft) in pyenv if ft and m >= floor)
    found, missing = [], []
    for minor, ft in wanted:
        spec = f"3.{minor}{'t' if ft else ''}"
        exe = pyenv.get((minor, ft))
        if exe is not None and _probe(exe, minor, ft):
            # put pyenv's interpreter first on PATH, under its own name only
            # (not python, python3 or pip), for nox's discovery to find
            # (the sessions' environments keep using the link: it is only
            # ever replaced atomically, never removed)
            _LINK_DIR.mkdir(parents=True, exist_ok=True)
            link = _LINK_DIR / exe.name
            if not (link.is_symlink() and os.readlink(link) == str(exe)):
                tmp = link.with_name(f".{link.name}.{os.getpid()}")
                tmp.symlink_to(exe)
                os.replace(tmp, link)
            found.append(spec)
        elif _nox_finds(minor, ft):
            found.append(spec)
        elif not ft:
            missing.append(spec)
    if found and _LINK_DIR.is_dir():
        os.environ["PATH"] = f"{_LINK_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    return found, missing


FOUND, MISSING = _discover()


#: what a session's private copy of the checkout leaves out: build products
#: (the generated C and the compiled module of another interpreter), version
#: control and the environments
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".nox", ".venv", "build", "dist", "*.egg-info", "*.so", "*.pyd", "_engine.c",
    "__pycache__", ".hypothesis", ".pytest_cache",
)


def _run_suite(session):
    session.install("--quiet", "--upgrade", "pip")
    # the package is built from a copy of the checkout of the session's own:
    # a build writes into its source tree (the generated C), so sessions that
    # run at the same time must not share one
    src = Path(session.create_tmp()) / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(ROOT, src, ignore=_NOT_COPIED)
    session.install("--quiet", f"{src}[test,viz]", "micrograd")
    # run from a directory of the session's own, with nothing of the checkout
    # importable: the tests see the installed package only
    run_dir = Path(session.create_tmp()) / "run"
    run_dir.mkdir(exist_ok=True)
    session.chdir(run_dir)
    env = {"MICROGRAD_FAST_TEST_INSTALLED": "1", "PYTHONPATH": None}
    session.run(
        "python",
        "-c",
        "import importlib, sys, micrograd_fast; "
        "core = importlib.import_module('micrograd_fast._engine'); "
        "gil = getattr(sys, '_is_gil_enabled', lambda: True)(); "
        "print('CPython', sys.version.split()[0], 'GIL on' if gil else 'GIL off'); "
        "print('micrograd_fast from', micrograd_fast.__file__); "
        "print('compiled core', core.__file__)",
        env=env,
    )
    args = list(session.posargs)
    if not args and session.python != FULL_SUITE_PYTHON:
        args = ["-m", "not slow"]
    session.run("pytest", str(ROOT / "tests"), "-p", "no:cacheprovider", *args, env=env)


if FOUND:

    @nox.session(python=FOUND)
    def tests(session):
        """Install the package for this interpreter and run the tests against it."""
        _run_suite(session)


def _skipper(spec):
    def skipped(session):
        session.skip(
            f"no CPython {spec} on this machine (nox's discovery and "
            f"{os.environ.get('PYENV_ROOT') or '~/.pyenv'}/versions were searched)"
        )

    skipped.__doc__ = f"CPython {spec} is claimed by the classifiers but not found here."
    return skipped


for _spec in MISSING:
    nox.session(name=f"tests-{_spec}", python=False)(_skipper(_spec))
