"""The compiled core and the pure engine are twins by name.

Every function and class of the compiled sources (``_engine.pyx`` and the
``_*.pxi`` files it includes) has a twin of the very same name in
``_engine_py.py``, unless it is a compiled-only helper listed below with its
reason; and every ``mirrors NAME`` note in the compiled sources names the
function it stands in (or, outside any function, something the pure engine
defines).  The check reads the sources, so it needs no build.
"""

import pathlib
import pickle
import re

import pytest

from micrograd_fast import _engine_py

PKG = pathlib.Path(__file__).resolve().parent.parent / "micrograd_fast"
SOURCES = [PKG / "_engine.pyx", *sorted(PKG.glob("_*.pxi"))]

# Compiled-only helpers: the arena, handles and C plumbing the pure engine
# has no counterpart for (there, Python objects and the garbage collector do
# the work).  Each with its reason.
COMPILED_ONLY = {
    # module set-up and the C tables
    "_setup_value_type": "installs the attribute dict, dealloc and open class on the static type",
    "_c_names": "reads a C name table of csrc/mgf_core.h into a tuple",
    "_class_ops_own_check": "_class_ops_own's full check, when the class's version tag moved",
    "_by_key": "qsort's comparison of arena indices for _creation_order",
    # the arena (growth and reclamation)
    "_grow": "arena growth",
    "_reserve": "arena room for a new node",
    "_make_room": "arena room, reclaiming first",
    "_fit_capacity": "arena capacity after a reclamation",
    "_headroom": "arena capacity for a peak need",
    "_note_graph": "backward()'s graph size holds up the arena's peak need",
    "_seen_map": "the byte map backward() keeps between passes",
    "_note_cycle": "counts reclamations that found a cycle of late pins",
    "_fit_edges": "edge array capacity after a reclamation",
    "_fit_local_grads": "local derivative array capacity after a reclamation",
    "_shrunk_size": "the shrink rule _fit_edges and _fit_local_grads share",
    "_compact": "mark-compact reclamation",
    "_grad_graph_room": "marks, checks and counts the room of a gradient graph (arena room)",
    "_make_plan": "recompute()'s kept plan of a graph (the pure engine walks it each time)",
    "_recompute": "Value.recompute's body: the kept plan, then mgf_recompute",
    "_mark_below": "marks the nodes below the outputs in a byte map (_reachable's set)",
    "_seed_data": "a grad_outputs item's number (the pure engine reads it inline)",
    "_reclaim": "a reclamation, collecting and compacting again after pins were handed over",
    "_take_handed_over": "holders' _keep take the late pins handed over (mgf_hand_over_pins)",
    "compact": "public arena call (the pure engine has no arena)",
    "_check_invariants": "checks the arena's invariants (mgf_check)",
    "arena_stats": "public arena call (the pure engine has no arena)",
    # handles and ownership (Python references do this in the pure engine)
    "_register": "binds a handle to its node",
    "_use": "marks a node as a child (MGF_F_USED)",
    "_own_arith": "whether the class's +, *, ** and unary - are still the core's slots",
    "_keeping": "whether a handle keeps Python state",
    "_set_keep": "stores a handle's _keep tuple",
    "_keep1": "a new node keeps its one keeping child's handle",
    "_keep2": "a new node keeps its two children's handles",
    "_keep_many": "a new node keeps its keeping children's handles",
    "_new_handle": "allocates a handle before room is reserved",
    "_track": "GC-tracks a handle that becomes keeping",
    "_child_handles": "handles of a node's children, made on demand",
    "_data": "reads a node's data",
    "_uninitialized": "the error the pure engine's _check_initialized raises",
    "_no_deleter": "the error Python's own properties raise on del (Cython's raise another)",
    "_is_number_type": "the pure engine's _is_number (the compiled one also reads the number)",
    "_name_pow": "names a ** x node after x as given (the pure engine names every node so)",
    "_none_rule": "stands for a None _backward (the pure engine stores None itself)",
    "_as_value": "a Value check with the node index at hand (inline in the pure engine)",
    "_check_param": "the same check on a borrowed pointer, for plan parameters",
    "_param_ids": "a plan's parameter ids, kept on the C plan object for its blocks",
    "_block_isa": "chooses the kernel variant of csrc/mgf_block.h (for tests)",
    "_indices_of": "the last parameter list's node indices, checked against the handle slots",
    "_checked_in_place": "the check of _check_values without its copy, for C loops",
    "_node_op_name": "the _op of a node without a handle, from its op code and aux",
    "_seq": "a tuple snapshot of a sequence (list() in the pure engine)",
    # making nodes and the backward sweep
    "_binary": "writes a two-child node",
    "_by_init": "runs a replaced __init__ on an op's node (the pure engine's ops call the class)",
    "_rewire": "writes a node in place for __init__ again (mgf_rewire)",
    "_start_state": "__init__'s Python state of a handle (attributes of the object in the pure engine)",
    "_binary_const": "writes a node whose second child is a new leaf",
    "_unary": "writes a one-child node",
    "_pow_big_int": "Value ** a big int (the pure engine's _exponent_minus_one)",
    "_sweep": "the backward sweep over the byte map",
    "_LocalRule": "a node's C rule as a callable (the pure engine's _local_rule closure)",
    "_math_error": "turns a C error code into Python's exception",
    "_run_plan": "the loop of mlp over a checked plan",
    # methods with no Python counterpart
    "Value.__dealloc__": "leaves the arena slot",
    "MLPPlan.__cinit__": "C arrays of a plan",
    "MLPPlan.__dealloc__": "C arrays of a plan",
    "MLPPlan._check_ready": "a plan made by mlp_plan only",
}

_DEF = re.compile(r"^(\s*)(?:def|(?:cp?def)(?:\s+inline)?(?:\s+[\w\[\]:,*]+)*?\s+\**)\s*(\w+)\s*\(")
_CLASS = re.compile(r"^(\s*)(?:cdef\s+)?class\s+(\w+)")
_MIRRORS = re.compile(r"\bmirrors\s+([A-Za-z_][\w.]*\w)")


def _scopes(text):
    """(qualified name, kind, line number) of every function and class, and
    for each line the qualified name of the innermost def or class around it
    ('' at module level)."""
    found, where, stack = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped:  # a comment ends a def too when it is less indented
            indent = len(line) - len(line.lstrip())
            while stack and stack[-1][0] >= indent:
                stack.pop()
        if stripped and not stripped.startswith("#"):
            m = _CLASS.match(line) or _DEF.match(line)
            if m and "=" not in line.split("(")[0]:
                kind = "class" if m.re is _CLASS else "def"
                qual = ".".join([s[1] for s in stack] + [m.group(2)])
                found.append((qual, kind, n))
                stack.append((indent, m.group(2), kind))
        where.append(".".join(s[1] for s in stack))
    return found, where


def _sources():
    return [(p.name, p.read_text(encoding="utf-8")) for p in SOURCES]


def _twin_has(qual):
    """The pure engine defines qual (a module-level helper of the compiled
    core may stand for a method of the pure Value, e.g. _pow_value)."""
    return _resolves(qual) or ("." not in qual and _resolves("Value." + qual, False))


def _resolves(qual, instance_ok=True):
    obj = _engine_py
    parts = qual.split(".")
    for k, part in enumerate(parts):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif obj is _engine_py.Value and k == len(parts) - 1 and instance_ok:
            # label and _backward are instance attributes of the pure Value
            return hasattr(_engine_py.Value(1.0), part)
        else:
            return False
    return True


def _compiled_names():
    names = []
    for fname, text in _sources():
        found, _ = _scopes(text)
        names += [(fname, qual, kind, n) for qual, kind, n in found]
    return names


def test_the_parser_sees_the_core():
    names = {qual for _, qual, _, _ in _compiled_names()}
    # one of each form: def, cdef, cdef inline with a pointer argument,
    # a typed memoryview result, a cdef class and its methods
    for expected in ("vsum", "_grow", "_is_number", "_check_state", "Value",
                     "Value.backward", "Value.__add__", "MLPPlan", "MLPPlan.nin"):
        assert expected in names
    assert len(names) > 80


def test_every_compiled_function_has_a_twin_of_the_same_name():
    missing = []
    for fname, qual, kind, n in _compiled_names():
        top = qual.split(".")[0]
        if qual in COMPILED_ONLY or (top in COMPILED_ONLY and top != qual):
            continue
        if not _twin_has(qual):
            missing.append(f"{fname}:{n}: {kind} {qual}")
    assert not missing, "no twin of the same name in _engine_py.py:\n" + "\n".join(missing)


def test_the_allow_list_names_only_compiled_functions():
    names = {qual for _, qual, _, _ in _compiled_names()}
    stale = sorted(set(COMPILED_ONLY) - names)
    assert not stale, f"listed as compiled-only but not in the compiled sources: {stale}"
    twins = sorted(q for q in COMPILED_ONLY if _twin_has(q))
    assert not twins, f"listed as compiled-only but the pure engine has them: {twins}"


def test_mirrors_notes_name_the_function_they_stand_in():
    bad = []
    count = 0
    for fname, text in _sources():
        _, where = _scopes(text)
        for m in _MIRRORS.finditer(text):
            count += 1
            line = text.count("\n", 0, m.start()) + 1
            name, scope = m.group(1), where[line - 1]
            if not _twin_has(name):
                bad.append(f"{fname}:{line}: mirrors {name}: the pure engine has no {name}")
            elif scope and name not in (scope, scope.split(".")[-1]):
                bad.append(f"{fname}:{line}: mirrors {name}, inside {scope}")
    assert count >= 10
    assert not bad, "\n".join(bad)


# the reconstructor each engine's pickles named in the previous version
EARLIER_RECONSTRUCTORS = {
    "micrograd_fast._engine": "_restore",
    "micrograd_fast._engine_py": "_rebuild_value",
}


def test_pickles_of_earlier_versions_still_load(engine):
    # protocol 0, by hand: how the previous version pickled Value(1.5) with
    # grad 0.25 and label 'x'
    name = EARLIER_RECONSTRUCTORS[engine.__name__]
    data = f"c{engine.__name__}\n{name}\n(F1.5\nF0.25\nVx\ntR.".encode()
    v = pickle.loads(data)
    assert type(v) is engine.Value
    assert (v.data, v.grad, v.label) == (1.5, 0.25, "x")


def test_pickles_name_the_reconstructor_of_the_same_name(engine):
    v = engine.Value(1.5, label="x")
    v.grad = 0.25
    fn = v.__reduce__()[0]
    assert fn.__name__ == "_rebuild_value"
    assert fn is engine._rebuild_value
    w = pickle.loads(pickle.dumps(v))
    assert (w.data, w.grad, w.label) == (1.5, 0.25, "x")
