"""Build of the compiled core.  Metadata lives in pyproject.toml."""

import glob
import os

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
