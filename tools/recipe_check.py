"""Leave out each step of the recipes in docs/architecture.md ("How to add
an op", "How to add an activation"), one at a time, and show that the check
the recipe names for that step fails.

The example is gelu, which is in the tree: for each step, a scratch copy of
the tracked files has that step's lines taken out (the rest of gelu stays),
is built when a compiled source changed (else it gets the compiled core of
this checkout), and runs the named tests with pytest.  A step passes here
when its check fails there (for the table line of an op: when the build
fails).  Run from the repository root, with the test extra and the build
requirements (Cython, setuptools) installed:

    python tools/recipe_check.py            # every step
    python tools/recipe_check.py op-2 act-3 # some steps

Exit status 0 when every step's check failed as the recipe says.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILED = (".h", ".pyx", ".pxd", ".pxi")
BUILD = "the build"

H = "csrc/mgf_core.h"
PYX = "micrograd_fast/_value.pxi"
TWIN = "micrograd_fast/_engine_py.py"
STUB = "micrograd_fast/_engine.pyi"
DOC = "docs/architecture.md"
EXAMPLES = "tests/op_examples.py"
OPT = "tests/test_op_table.py::"
TT = "tests/test_tables.py::"

GELU_RULE = """    case MGF_GELU: {
        mgf_node *x = &nd[o->k.c[0]];
        x->grad += mgf_gelu_slope(x->data) * g;
        break;
    }
"""
TWIN_METHOD = '''    def gelu(self):  # mirrored by MGF_GELU
        out = Value(_gelu(self._data), (self,), "gelu")
        out._local = _lg_gelu
        out._fwd = lambda: _gelu(self._data)

        def _backward():
            self._grad += _gelu_slope(self._data) * out._grad

        _backward.vjp = None  # a built-in rule not written as nodes
        out._backward = _backward
        return out

'''
RECOMPUTE_CASE = """        case MGF_GELU:
            r = mgf_gelu(nd[o->k.c[0]].data);
            break;
"""

#: (name, what is left out, [(file, text taken out)], the checks that must fail)
STEPS = [
    ("op-1", "the table line in MGF_OPS",
     [(H, '    X(GELU, "gelu")     /* Value.gelu                                     */ \\\n')],
     [BUILD]),
    ("op-2", "the case in mgf_rule", [(H, GELU_RULE)],
     [OPT + "test_op_at_ordinary_points"]),
    ("op-3", "the case in mgf_local_grads",
     [(H, "    case MGF_GELU: out[0] = mgf_gelu_slope(nd[ch[0]].data); return 1;\n")],
     [OPT + "test_op_at_ordinary_points"]),
    ("op-4", "the compiled method Value.gelu",
     [(PYX, "    def gelu(self):  # Value.gelu\n"
            "        return _unary(MGF_GELU, self, mgf_gelu(_data(self)), 0.0, 0)\n")],
     [OPT + "test_every_unary_method_is_on_both_classes"]),
    ("op-5", "the twin's method Value.gelu", [(TWIN, TWIN_METHOD)],
     [OPT + "test_every_unary_method_is_on_both_classes",
      TT + "test_every_op_rule_of_the_pure_engine_names_its_code"]),
    ("op-6", "the twin's local derivative (out._local = _lg_gelu)",
     [(TWIN, "        out._local = _lg_gelu\n")],
     [OPT + "test_op_at_ordinary_points"]),
    ("op-7", "the stub's method", [(STUB, "    def gelu(self) -> Value: ...\n")],
     [OPT + "test_every_unary_method_is_in_the_stub"]),
    ("op-8", "the docs row", [(DOC, "| `GELU` | `gelu` | `a.gelu()` | `gelu` | `Value.gelu` |\n")],
     [TT + "test_the_docs_op_table_is_the_c_table"]),
    ("op-9", "the example entry",
     [(EXAMPLES, '    OpExample("GELU", lambda E, x: x.gelu(), ORDINARY, _gelu,\n'
                 '              lambda x: (_gelu_slope(x),), method="gelu"),\n')],
     [OPT + "test_every_op_code_has_an_example_entry"]),
    ("op-10", "the case in mgf_recompute and the op's line in mgf_replay_refuses",
     [(H, RECOMPUTE_CASE),
      (H, "    case MGF_GELU:  /* (a new op: its line here, its case in mgf_recompute) */\n")],
     [OPT + "test_op_replays"]),
    ("op-11", "the twin's forward for recompute (out._fwd)",
     [(TWIN, "        out._fwd = lambda: _gelu(self._data)\n")],
     [OPT + "test_op_replays"]),
    ("act-1", "the table line in MGF_ACTS (and its cases, which need it)",
     [(H, '  \\\n    X(GELU, "gelu", MGF_GELU)\n'),
      (H, "    case MGF_ACT_GELU: return mgf_gelu(z);\n"),
      (H, "    case MGF_ACT_GELU: return mgf_gelu_slope(z) * g;\n")],
     [TT + "test_one_list_of_activations"]),
    ("act-2", "the case in mgf_activate", [(H, "    case MGF_ACT_GELU: return mgf_gelu(z);\n")],
     [OPT + "test_activation_fused_and_unfused_on_both_engines"]),
    ("act-3", "the case in mgf_activate_grad",
     [(H, "    case MGF_ACT_GELU: return mgf_gelu_slope(z) * g;\n")],
     [OPT + "test_activation_fused_and_unfused_on_both_engines"]),
    ("act-4", "the twin's branch in _activate",
     [(TWIN, '    if act == "gelu":\n        return _gelu(z)\n')],
     [OPT + "test_activation_fused_and_unfused_on_both_engines"]),
    ("act-5", "the twin's branch in _activate_grad",
     [(TWIN, '    if act == "gelu":\n        return _gelu_slope(z) * g\n')],
     [OPT + "test_activation_fused_and_unfused_on_both_engines"]),
    ("act-6", "the name in ACTIVATIONS", [("micrograd_fast/_vocab.py", '"gelu", ')],
     [TT + "test_one_list_of_activations"]),
    ("act-7", "the display name", [("micrograd_fast/nn.py", '    "gelu": "GELU",\n')],
     [TT + "test_one_list_of_activations"]),
    ("act-8", "the stub's _Activation", [(STUB, '"gelu", ')],
     [TT + "test_the_stub_lists_the_activations"]),
    ("act-9", "the docs row",
     [(DOC, "| `ACT_GELU` | `gelu` | `GELU` | `GELU` | pre-activation |\n")],
     [TT + "test_the_docs_activation_table_is_the_c_table"]),
    ("act-10", "the example entry", [(EXAMPLES, '    "gelu": ActExample(_gelu, _gelu_slope),\n')],
     [OPT + "test_every_activation_has_an_example_entry"]),
]


def scratch_copy(dest):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def build(tree):
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tree, capture_output=True, text=True)


def pytest(tree, check):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           check], cwd=tree, capture_output=True, text=True)


def compiled_cores(tree):
    pattern = os.path.join(tree, "micrograd_fast", "_engine*")
    return [p for p in glob.glob(pattern) if p.endswith((".so", ".pyd"))]


def run_step(name, what, cuts, checks, base):
    with tempfile.TemporaryDirectory(prefix="recipe-") as tmp:
        scratch_copy(tmp)
        for rel, text in cuts:
            path = os.path.join(tmp, rel)
            with open(path, encoding="utf-8") as f:
                body = f.read()
            if body.count(text) != 1:
                return False, f"the text to take out of {rel} is not there once: {text!r}"
            with open(path, "w", encoding="utf-8") as f:
                f.write(body.replace(text, ""))
        if any(rel.endswith(COMPILED) for rel, _ in cuts):
            built = build(tmp)
            if built.returncode != 0:
                if checks == [BUILD] and "MGF_GELU" in built.stdout + built.stderr:
                    return True, "the build fails (MGF_GELU undeclared)"
                return False, "the build fails, not the named check:\n" + built.stderr[-2000:]
            if checks == [BUILD]:
                return False, "the build succeeds"
        else:
            for so in compiled_cores(base):
                shutil.copy2(so, os.path.join(tmp, "micrograd_fast"))
        said = []
        for check in checks:
            res = pytest(tmp, check)
            last = (res.stdout.strip().splitlines() or [""])[-1]
            if res.returncode != 1:  # 1: tests ran and some failed
                return False, f"{check} does not fail: {last}"
            said.append(f"{check.split('::')[-1]} fails ({last})")
        return True, "; ".join(said)


def main(argv):
    wanted = set(argv)
    steps = [s for s in STEPS if not wanted or s[0] in wanted]
    with tempfile.TemporaryDirectory(prefix="recipe-base-") as base:
        # the tree as it is, built once: every check passes there, and its
        # compiled core serves the steps that change no compiled source
        scratch_copy(base)
        built = build(base)
        if built.returncode != 0:
            print("the tree as it is does not build:\n" + built.stderr[-3000:])
            return 1
        for check in sorted({c for *_, checks in steps for c in checks if c != BUILD}):
            res = pytest(base, check)
            if res.returncode != 0:
                print(f"{check} fails on the tree as it is:\n{res.stdout[-3000:]}")
                return 1
        return run_steps(steps, base)


def run_steps(steps, base):
    ok = True
    for name, what, cuts, checks in steps:
        t0 = time.monotonic()
        good, why = run_step(name, what, cuts, checks, base)
        ok = ok and good
        print(f"{'ok  ' if good else 'FAIL'} {name:6} without {what}: {why} "
              f"[{time.monotonic() - t0:.0f} s]", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
