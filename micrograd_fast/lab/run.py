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


# the name the rewritten code calls to get micrograd_fast's Value: it is
# given the code's own class (see Grafts) and returns ours
_INJECTED = "__micrograd_fast_Value__"


def replace_value(source, filename):
    """Compile ``source`` with each top-level ``class Value`` rebound to ours.

    Right after every ``class Value`` statement at the top level of the
    module, ``Value = __micrograd_fast_Value__(Value)`` is inserted: the
    injected callable (a :class:`Grafts`) is given the code's own class and
    returns micrograd_fast's, so everything the code does afterwards with
    the name (constructing, subclassing, ``isinstance``) uses micrograd_fast's
    class.  Line numbers are kept for tracebacks.  Returns ``(code, [line of
    each class replaced])``; raises NoValueClass when there is none.
    """
    tree = ast.parse(source, filename=filename)
    body, lines = [], []
    for stmt in tree.body:
        body.append(stmt)
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Value":
            lines.append(stmt.lineno)
            rebind = ast.Assign(
                targets=[ast.Name(id="Value", ctx=ast.Store())],
                value=ast.Call(func=ast.Name(id=_INJECTED, ctx=ast.Load()),
                               args=[ast.Name(id="Value", ctx=ast.Load())], keywords=[]),
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


#: methods a script's class may define that cannot be grafted onto ours:
#: _prev is a set of the very Values, so equality and hashing stay identity
NOT_GRAFTED = frozenset({"__eq__", "__ne__", "__hash__"})


class Grafts:
    """What ``Value = __micrograd_fast_Value__(Value)`` calls: given the
    code's own class, it adds to micrograd_fast's ``Value``, for the run,
    each method that class defines and ours lacks (a lecture-style op such
    as ``def sin(self): out = Value(math.sin(self.data), (self,), 'sin')``
    with a ``_backward`` closure works unchanged on our open class), says so
    on ``announce``, and returns ours.  ``undo()`` takes them off again."""

    def __init__(self, ours, announce=None):
        self.ours = ours
        self.announce = announce
        self.added = []

    def _ours_has(self, name):
        return any(name in vars(k) for k in type.mro(self.ours) if k is not object)

    def __call__(self, theirs):
        if theirs is self.ours:
            return self.ours
        grafted, refused = [], []
        for name, obj in vars(theirs).items():
            if name in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__",
                        "__slots__", "__init__", "__new__", "__firstlineno__",
                        "__static_attributes__") or self._ours_has(name):
                continue
            if not (callable(obj) or isinstance(obj, (staticmethod, classmethod, property))):
                continue
            if name in NOT_GRAFTED:
                refused.append(name)
                continue
            setattr(self.ours, name, obj)
            self.added.append(name)
            grafted.append(name)
        if self.announce is not None and grafted:
            print(f"micrograd-fast: adding {', '.join(grafted)} from the class Value of "
                  f"{theirs.__module__} to micrograd_fast's Value for this run",
                  file=self.announce, flush=True)
        if self.announce is not None and refused:
            print(f"micrograd-fast: not adding {', '.join(refused)} from the class Value of "
                  f"{theirs.__module__}: micrograd_fast's Values compare and hash by "
                  f"identity (_prev is a set of the very Values)",
                  file=self.announce, flush=True)
        return self.ours

    def undo(self):
        for name in reversed(self.added):
            if name in vars(self.ours):
                delattr(self.ours, name)
        self.added.clear()


class _ReplacedLoader(importlib.abc.Loader):
    def __init__(self, code, grafts):
        self.code = code
        self.grafts = grafts

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__dict__[_INJECTED] = self.grafts
        exec(self.code, module.__dict__)


class ValueReplacingFinder(importlib.abc.MetaPathFinder):
    """Imports the modules a script imports from its own directory (or the
    one module named) with their top-level ``class Value`` replaced by ours,
    as the script's own is (the course layout: ``from value import Value``
    beside the script)."""

    def __init__(self, home, only, grafts, announce=None):
        self.home = os.path.abspath(home) + os.sep
        self.only = only
        self.grafts = grafts
        self.announce = announce

    def find_spec(self, fullname, path=None, target=None):
        if self.only is not None and fullname != self.only:
            return None
        if self.only is None and _is_aliased(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        if self.only is None and not os.path.abspath(spec.origin).startswith(self.home):
            return None
        with open(spec.origin, "rb") as fh:
            source = fh.read()
        try:
            code, lines = replace_value(source, spec.origin)
        except (NoValueClass, SyntaxError):
            return None
        if self.announce is not None:
            for line in lines:
                print(f"micrograd-fast: replacing the class Value of module {fullname} "
                      f"({spec.origin}, line {line}) with micrograd_fast's Value",
                      file=self.announce, flush=True)
        spec.loader = _ReplacedLoader(code, self.grafts)
        return spec


def _has_value_class(path):
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(s, ast.ClassDef) and s.name == "Value" for s in tree.body)


def _modules_with_value_class(home, limit=2000):
    """The .py files under ``home`` (the script's directory, its packages
    included) with a top-level ``class Value``."""
    found = []
    for count, (root, dirs, files) in enumerate(os.walk(home)):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.endswith(".py") and _has_value_class(os.path.join(root, name)):
                found.append(os.path.join(root, name))
        if count > limit:
            break
    return found


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
    :func:`shadowed_micrograd`).  With ``replace_value_class`` (True) the
    top-level ``class Value`` of the script and of every module it imports
    from its own directory (packages included) is replaced by micrograd_fast's
    (see :func:`replace_value`), the methods such a class has and ours lacks
    are added to ours for the run (:class:`Grafts`), and ``announce`` gets a
    line for each class and each addition; a module name instead of True
    replaces the class of that module only (and the script's own).
    NoValueClass when there is nothing to replace.  The script's SystemExit
    and exceptions propagate.
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
    code, extra_globals, replaced, finder, grafts = None, {}, [], None, None
    if replace_value_class:
        if not os.path.isfile(source_path):
            raise ScriptNotFound(f"--replace-value reads the script's source: {path} is "
                                 "a zip file")
        with open(source_path, "rb") as fh:
            source = fh.read()
        only = None if replace_value_class is True else str(replace_value_class)
        try:
            code, replaced = replace_value(source, source_path)
        except NoValueClass:
            if only is not None:
                spec = importlib.machinery.PathFinder.find_spec(only, [script_dir] + sys.path)
                if spec is None or not spec.origin or not _has_value_class(spec.origin):
                    raise NoValueClass(f"module {only} (looked for from {script_dir}) "
                                       "defines no top-level 'class Value' to replace") from None
            elif not _modules_with_value_class(script_dir):
                raise NoValueClass(f"{path} defines no top-level 'class Value' to replace, "
                                   "nor does a module beside it") from None
        grafts = Grafts(engine.Value, announce)
        extra_globals[_INJECTED] = grafts
        finder = ValueReplacingFinder(script_dir, only, grafts, announce)
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
    saved_argv = sys.argv
    saved_path = list(sys.path)
    sys.argv = [path, *args]
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    if finder is not None:
        sys.meta_path.insert(0, finder)
    try:
        with micrograd_alias():
            if code is None:
                runpy.run_path(path, run_name="__main__")
            else:
                _exec_as_main(code, source_path, extra_globals)
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if finder is not None:
            sys.meta_path.remove(finder)
            for name in [n for n, m in sys.modules.items()
                         if isinstance(getattr(getattr(m, "__spec__", None), "loader", None),
                                       _ReplacedLoader)]:
                del sys.modules[name]
        if grafts is not None:
            grafts.undo()
