"""Running scripts written for micrograd on micrograd_fast, unchanged.

While ``micrograd_alias()`` is active, ``import micrograd`` gives the
``micrograd_fast`` package and ``micrograd.X`` gives ``micrograd_fast.X``
(``micrograd.engine``, ``micrograd.nn``, ...), even when the original
micrograd is installed: a finder placed first on ``sys.meta_path`` answers
for those names, and any micrograd modules already imported are set aside
until the block ends.

``shadowed_micrograd`` lists the real micrograd packages or modules the alias
hides from a script, so the command can name them before running it, and
``replace_value`` rewrites a script that defines its own ``class Value`` so
that the name is bound to micrograd_fast's class instead.
"""

import ast
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types

ALIASED = "micrograd"
TARGET = "micrograd_fast"


def _is_aliased(name):
    return name == ALIASED or name.startswith(ALIASED + ".")


class MicrogradAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``micrograd[.X]`` as the module ``micrograd_fast[.X]``."""

    def find_spec(self, fullname, path=None, target=None):
        if not _is_aliased(fullname):
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):
        alias = module.__name__
        real_name = TARGET + alias[len(ALIASED):]
        try:
            real = importlib.import_module(real_name)
        except ModuleNotFoundError as exc:
            if exc.name != real_name:
                raise
            raise ModuleNotFoundError(
                f"No module named {alias!r}: micrograd_fast stands in for "
                f"micrograd here and has no {real_name!r}",
                name=alias,
            ) from None
        # the import system returns whatever sys.modules holds after exec
        sys.modules[alias] = real


@contextlib.contextmanager
def micrograd_alias():
    """Within the block, ``micrograd`` imports resolve to micrograd_fast."""
    finder = MicrogradAliasFinder()
    set_aside = {n: m for n, m in sys.modules.items() if _is_aliased(n)}
    for name in set_aside:
        del sys.modules[name]
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if _is_aliased(n)]:
            del sys.modules[name]
        sys.modules.update(set_aside)


def _spec_path(spec):
    """The file or directory a found ``micrograd`` spec would load."""
    if spec.origin and spec.origin not in ("namespace", "built-in", "frozen"):
        origin = spec.origin
        if spec.submodule_search_locations and os.path.basename(origin).startswith("__init__."):
            return os.path.dirname(origin)  # a package: its directory
        return origin
    locations = list(spec.submodule_search_locations or [])
    return locations[0] if locations else None


def shadowed_micrograd(script_dir, search_path=None):
    """``(path, where)`` for every ``micrograd`` package or module the alias hides.

    Looks where ``python script.py`` would import ``micrograd`` from: the
    script's directory (``where == 'next to the script'``), then the working
    directory (``'in the working directory'``), then the other entries of
    ``search_path`` (default ``sys.path``; ``'installed'``).  Each path is
    given once, at its first place, and ``micrograd_fast`` itself (or a
    ``micrograd`` that is an alias of it) is never listed.
    """
    entries = [(os.path.abspath(script_dir), "next to the script"),
               (os.path.abspath(os.getcwd()), "in the working directory")]
    for entry in sys.path if search_path is None else search_path:
        entries.append((os.path.abspath(entry or os.curdir), "installed"))
    found, seen_entries, seen_paths = [], set(), set()
    for entry, where in entries:
        if entry in seen_entries:
            continue
        seen_entries.add(entry)
        try:
            spec = importlib.machinery.PathFinder.find_spec(ALIASED, [entry])
        except (ImportError, OSError, ValueError):
            continue
        if spec is None:
            continue
        path = _spec_path(spec)
        if path is None or path in seen_paths:
            continue
        seen_paths.add(path)
        found.append((path, where))
    return found


class NoValueClass(ValueError):
    """The script defines no top-level ``class Value`` to replace."""


class ScriptNotFound(FileNotFoundError):
    """There is no script to run at the path given."""


# the name the rewritten script reads micrograd_fast's Value from
_INJECTED = "__micrograd_fast_Value__"


def replace_value(source, filename):
    """Compile ``source`` with each top-level ``class Value`` rebound to ours.

    Right after every ``class Value`` statement at the top level of the
    module, ``Value = <micrograd_fast's Value>`` is inserted, so everything
    the script does afterwards with the name (constructing, subclassing,
    ``isinstance``) uses micrograd_fast's class; the script's own class is
    still defined, then dropped.  Line numbers are kept for tracebacks.
    Returns ``(code, [line of each class replaced])``; raises NoValueClass
    when there is none.
    """
    tree = ast.parse(source, filename=filename)
    body, lines = [], []
    for stmt in tree.body:
        body.append(stmt)
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Value":
            lines.append(stmt.lineno)
            rebind = ast.Assign(
                targets=[ast.Name(id="Value", ctx=ast.Store())],
                value=ast.Name(id=_INJECTED, ctx=ast.Load()),
            )
            end = stmt.end_lineno or stmt.lineno
            for node in ast.walk(rebind):
                node.lineno = node.end_lineno = end
                node.col_offset = node.end_col_offset = 0
            body.append(rebind)
    if not lines:
        raise NoValueClass(f"{filename} defines no top-level 'class Value' to replace")
    tree.body = body
    return compile(tree, filename, "exec"), lines


def value_class_methods(source, filename):
    """Names of the methods the top-level ``class Value`` statements of
    ``source`` define, in order (each name once)."""
    names = []
    for stmt in ast.parse(source, filename=filename).body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Value":
            for item in stmt.body:
                if (isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and item.name not in names):
                    names.append(item.name)
    return names


def _exec_as_main(code, path, extra_globals):
    """Execute ``code`` as the ``__main__`` module of the file ``path``."""
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__loader__ = None
    main.__package__ = None
    main.__spec__ = None
    main.__dict__.update(extra_globals)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved
        else:
            sys.modules.pop("__main__", None)


def main_file(path):
    """The file ``python path`` runs: ``path`` itself, or the
    ``__main__.py`` of a directory or zip file; None when there is none."""
    if os.path.isdir(path):
        inner = os.path.join(path, "__main__.py")
        return inner if os.path.isfile(inner) else None
    if os.path.isfile(path):
        import zipfile

        if zipfile.is_zipfile(path) and not path.endswith(".py"):
            with zipfile.ZipFile(path) as zf:
                return os.path.join(path, "__main__.py") if "__main__.py" in zf.namelist() else None
        return path
    return None


def script_traceback(exc, path):
    """``exc``'s traceback from the first frame of the script's own code on
    (the file ``python path`` runs), as Python prints it for ``python
    path``; the whole traceback when the script's code is not in it."""
    import traceback

    target = os.path.abspath(main_file(path) or path)
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != target:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    return "".join(lines)


def run_script(path, args=(), announce=None, replace_value_class=False):
    """Run the file ``path`` as ``__main__`` with micrograd meaning micrograd_fast.

    ``path`` may also be a directory or a zip file with a ``__main__.py``,
    as for ``python path``.  ``sys.argv`` becomes ``[path, *args]`` and
    ``sys.path[0]`` the script's directory (the directory or zip file
    itself for those), as for ``python path args``.  ``announce`` (a stream, e.g.
    stderr) gets one line saying which engine stands in for micrograd, and
    one line per real micrograd package or module the alias hides (see
    :func:`shadowed_micrograd`).  With ``replace_value_class`` the script's
    top-level ``class Value`` is replaced by micrograd_fast's (see
    :func:`replace_value`; NoValueClass when it has none), and ``announce``
    gets a line naming the class and line.  The script's SystemExit and
    exceptions propagate.
    """
    path = os.fspath(path)
    source_path = main_file(path)
    if source_path is None:
        if os.path.isdir(path):
            raise ScriptNotFound(f"{path} is a directory with no __main__.py to run")
        raise ScriptNotFound(f"no such script: {path}")
    runs_a_file = source_path == path
    import micrograd_fast
    from micrograd_fast.lab.engines import engine_name
    import micrograd_fast.engine as engine

    # what python puts first on sys.path: the script's directory, or the
    # directory or zip file itself
    script_dir = os.path.dirname(os.path.abspath(path)) if runs_a_file else os.path.abspath(path)
    code, extra_globals, replaced = None, {}, []
    if replace_value_class:
        if not os.path.isfile(source_path):
            raise ScriptNotFound(f"--replace-value reads the script's source: {path} is "
                                 "a zip file")
        with open(source_path, "rb") as fh:
            source = fh.read()
        code, replaced = replace_value(source, source_path)
        extra_globals[_INJECTED] = engine.Value
    if announce is not None:
        print(
            f"micrograd-fast: running {path} with micrograd_fast "
            f"{micrograd_fast.__version__} ({engine_name(engine)} engine) "
            f"in place of micrograd",
            file=announce,
            flush=True,
        )
        for shadowed, place in shadowed_micrograd(script_dir, sys.path[1:]):
            kind = "package" if os.path.isdir(shadowed) else "module"
            what = (f"the installed micrograd {kind}" if place == "installed"
                    else f"the micrograd {kind} {place}")
            print(
                f"micrograd-fast: shadowing {what} "
                f"('import micrograd' gives micrograd_fast): {shadowed}",
                file=announce,
                flush=True,
            )
        for line in replaced:
            print(
                f"micrograd-fast: replacing the script's class Value ({path}, line "
                f"{line}) with micrograd_fast's Value "
                f"({engine.Value.__module__}.Value)",
                file=announce,
                flush=True,
            )
        missing = []
        if replaced:
            missing = [name for name in value_class_methods(source, source_path)
                       if not hasattr(engine.Value, name)]
        if missing:
            print(
                f"micrograd-fast: the script's class Value defines "
                f"{', '.join(missing)}, which micrograd_fast's Value does not have: "
                f"calls to them fail unless the script adds them to Value",
                file=announce,
                flush=True,
            )
    saved_argv = sys.argv
    saved_path = list(sys.path)
    sys.argv = [path, *args]
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    try:
        with micrograd_alias():
            if code is None:
                runpy.run_path(path, run_name="__main__")
            else:
                _exec_as_main(code, source_path, extra_globals)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
