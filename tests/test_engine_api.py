"""The engine interface is written once, in ``micrograd_fast.engine``
(``ENGINE_API``, ``ARENA_API``): both engines' ``__all__``, the stubs and
whatever forwards engine names (the package, the lab's engine switch, the
optimizers and modules that find a Value's engine) follow it."""

import ast
import os
import subprocess
import sys
import textwrap
import types

import pytest

import micrograd_fast
import micrograd_fast.engine as selector
from micrograd_fast import nn, optim

PACKAGE_DIR = os.path.dirname(os.path.abspath(micrograd_fast.__file__))
PACKAGE_PARENT = os.path.dirname(PACKAGE_DIR)


def test_each_engine_exports_the_interface(engine):
    expected = selector.ENGINE_API + (selector.ARENA_API if engine.COMPILED else ())
    assert tuple(engine.__all__) == expected
    for name in expected:
        assert hasattr(engine, name), name


def test_the_interface_lists_have_no_repeats():
    names = selector.ENGINE_API + selector.ARENA_API
    assert len(set(names)) == len(names)


def test_the_selector_binds_the_selected_engines_names():
    impl = sys.modules[selector.ENGINE_MODULES["compiled" if selector.COMPILED else "pure"]]
    for name in selector.ENGINE_API:
        assert getattr(selector, name) is getattr(impl, name), name
    for name in selector.ARENA_API:
        assert hasattr(selector, name) is hasattr(impl, name), name


def _stub(name):
    with open(os.path.join(PACKAGE_DIR, name), encoding="utf-8") as fh:
        return ast.parse(fh.read())


def _stub_all(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]:
            return [ast.literal_eval(e) for e in node.value.elts]
    raise AssertionError("the stub has no __all__")


def _stub_public_names(tree):
    """The public names a stub defines at its top level (star imports aside)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module.startswith("micrograd_fast"):
            names.update(a.asname for a in node.names if a.asname)
    return {n for n in names if not n.startswith("_")}


def test_the_compiled_core_stub_declares_the_interface():
    tree = _stub("_engine.pyi")
    expected = selector.ENGINE_API + selector.ARENA_API
    assert tuple(_stub_all(tree)) == expected
    assert _stub_public_names(tree) == set(expected)


def test_the_selector_stub_declares_the_selectors_names():
    tree = _stub("engine.pyi")
    star = [n for n in tree.body if isinstance(n, ast.ImportFrom)
            and [a.name for a in n.names] == ["*"]]
    assert [n.module for n in star] == ["micrograd_fast._engine"]
    declared = _stub_public_names(tree) | set(selector.ENGINE_API + selector.ARENA_API)
    runtime = {
        name for name, obj in vars(selector).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType)
    }
    # the pure engine has no arena: its names are the stub's all the same
    assert declared == runtime | set(selector.ARENA_API)
    assert _stub_all(tree) == selector.__all__


def test_the_package_forwards_the_selected_engines_names():
    for ours, theirs in selector.PACKAGE_FORWARDS:
        assert getattr(micrograd_fast, ours) is getattr(selector, theirs)
    # and every engine object the package exports is forwarded that way
    engine_objects = {id(getattr(selector, n)) for n in selector.ENGINE_API}
    forwarded = {ours for ours, _ in selector.PACKAGE_FORWARDS}
    for name in micrograd_fast.__all__:
        obj = getattr(micrograd_fast, name)
        if id(obj) in engine_objects and not isinstance(obj, bool):
            assert name in forwarded, name


def test_package_sum_uses_the_selected_engine(Value):
    # micrograd_fast.sum is the selected engine's vsum; the other engine's
    # Values are refused, the selected one's summed
    selected = micrograd_fast.Value
    total = micrograd_fast.sum([selected(1.0), selected(2.0)])
    assert type(total) is selected and total.data == 3.0
    if Value is not selected:
        with pytest.raises(TypeError):
            micrograd_fast.sum([Value(1.0), Value(2.0)])


def test_engine_of(engine, Value):
    assert selector.engine_of(Value(1.0)) is engine
    assert selector.engine_of(1.0) is None
    assert selector.engine_of(engine.MLPPlan) is None
    assert selector.is_engine(engine) and selector.is_engine(selector)
    assert not selector.is_engine(types.ModuleType("not_an_engine"))


def test_a_subclassed_value_keeps_its_engine(engine, Value):
    class Mine(Value):
        pass

    p = Mine(1.0)
    assert selector.engine_of(p) is engine
    opt = optim.SGD([p], lr=0.5)
    assert opt.engine is engine
    (p * p).backward()
    opt.step()
    assert p.data == 0.0
    opt.zero_grad()
    assert p.grad == 0.0


def test_modules_and_optimizers_find_the_values_engine(engine):
    model = nn.MLP(2, [3, 1], engine=engine)
    assert optim.Adam(model).engine is engine
    with pytest.raises(TypeError, match="micrograd_fast engine"):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(TypeError, match="engine module"):
        nn.MLP(2, [1], engine=types.ModuleType("not_an_engine"))


SWITCH = """
    import micrograd_fast
    import micrograd_fast.engine as selector
    from micrograd_fast.lab.engines import use_engine

    engine = use_engine({target!r})
    impl = __import__(selector.ENGINE_MODULES[{target!r}], fromlist=["x"])
    for name in selector.ENGINE_API:
        assert getattr(engine, name) is getattr(impl, name), name
    for name in selector.ARENA_API:
        assert hasattr(engine, name) is hasattr(impl, name), name
    for ours, theirs in selector.PACKAGE_FORWARDS:
        assert getattr(micrograd_fast, ours) is getattr(impl, theirs), ours
    from micrograd_fast import Value
    total = micrograd_fast.sum([Value(1.0), Value(2.0)])
    print(type(total).__module__, total.data)
"""


def _python(code, start):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [PACKAGE_PARENT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env["MICROGRAD_FAST_NO_EXTENSIONS"] = "1" if start == "pure" else "0"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_switching_engines_rebinds_every_forwarded_name(engine, no_extensions):
    # regression: after use_engine("pure") micrograd_fast.sum was still the
    # compiled core's vsum and refused the pure engine's Values
    target = "compiled" if engine.COMPILED else "pure"
    other = "pure" if engine.COMPILED else "compiled"
    start = "pure" if no_extensions else other
    r = _python(SWITCH.format(target=target), start)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [selector.ENGINE_MODULES[target], "3.0"]
