"""Running scripts written for micrograd on micrograd_fast, unchanged.

While ``micrograd_alias()`` is active, ``import micrograd`` gives the
``micrograd_fast`` package and ``micrograd.X`` gives ``micrograd_fast.X``
(``micrograd.engine``, ``micrograd.nn``, ...), even when the original
micrograd is installed: a finder placed first on ``sys.meta_path`` answers
for those names, and any micrograd modules already imported are set aside
until the block ends.
"""

import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys

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


def run_script(path, args=(), announce=None):
    """Run the file ``path`` as ``__main__`` with micrograd meaning micrograd_fast.

    ``sys.argv`` becomes ``[path, *args]`` and ``sys.path[0]`` the script's
    directory, as for ``python path args``.  ``announce`` (a stream, e.g.
    stderr) gets one line saying which engine stands in for micrograd.
    The script's SystemExit and exceptions propagate.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such script: {path}")
    import micrograd_fast
    from micrograd_fast.lab.engines import engine_name
    import micrograd_fast.engine as engine

    if announce is not None:
        print(
            f"micrograd-fast: running {path} with micrograd_fast "
            f"{micrograd_fast.__version__} ({engine_name(engine)} engine) "
            f"in place of micrograd",
            file=announce,
            flush=True,
        )
    saved_argv = sys.argv
    saved_path = list(sys.path)
    sys.argv = [path, *args]
    script_dir = os.path.dirname(os.path.abspath(path))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    try:
        with micrograd_alias():
            runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
