"""Build of the compiled core.  Metadata lives in pyproject.toml."""

import glob
import os
import re

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("MICROGRAD_FAST_DEBUG_BUILD", "") not in ("", "0")

define_macros = [
    # arena memory goes through Python's raw allocator, so tracemalloc sees it
    ("MGF_REALLOC", "PyMem_RawRealloc"),
    ("MGF_FREE", "PyMem_RawFree"),
    ("MGF_CALLOC", "PyMem_RawCalloc"),
]
if DEBUG:
    define_macros.append(("MGF_DEBUG", "1"))
    extra_compile_args = ["-O0", "-g3", "-UNDEBUG"]
elif os.name == "nt":
    extra_compile_args = ["/O2"]
else:
    extra_compile_args = ["-O3"]
if os.name != "nt":
    # no fused multiply-add: both engines must round every product and sum
    # the same way (Python floats never fuse)
    extra_compile_args.append("-ffp-contract=off")


def write_code_declarations(header="csrc/mgf_core.h", out="src/mgf_codes.pxd"):
    """Cython's declarations of the op and activation codes, made from the
    header's X-macro lists (MGF_OPS, MGF_ACTS) at every build, so that a new
    op or activation is written once, in C.  The file is rewritten only when
    its text changes (Cython then recompiles), and is not tracked by git."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    lines = [
        "# Made by setup.py from the X-macro lists of csrc/mgf_core.h at every",
        "# build: edit those lists, not this file (it is not tracked by git).",
        "",
        'cdef extern from "mgf_core.h" nogil:',
    ]
    for macro, prefix, count in (("MGF_OPS", "MGF_", "MGF_NOPS"),
                                 ("MGF_ACTS", "MGF_ACT_", "MGF_NACTS")):
        start = text.index(f"#define {macro}(X)")
        body = []
        for line in text[start:].splitlines()[1:]:
            body.append(re.sub(r"/\*.*?\*/", "", line))
            if not line.rstrip().endswith("\\"):
                break
        codes = [args.split(",")[0].strip() for args in re.findall(r"X\(([^)]*)\)", " ".join(body))]
        lines.append("    enum:")
        lines += [f"        {prefix}{code}" for code in codes]
        lines += [f"        {count}", ""]
    new = "\n".join(lines)
    try:
        with open(out, encoding="utf-8") as f:
            if f.read() == new:
                return
    except FileNotFoundError:
        pass
    with open(out, "w", encoding="utf-8") as f:
        f.write(new)


write_code_declarations()

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        "micrograd_fast._engine",
        ["micrograd_fast/_engine.pyx"],
        include_dirs=["csrc"],
        depends=sorted(
            glob.glob("csrc/*.h") + glob.glob("src/*.pxd") + glob.glob("micrograd_fast/_*.px[di]")
        ),
        define_macros=define_macros,
        extra_compile_args=extra_compile_args,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives=directives,
        force=DEBUG,
    ),
)
