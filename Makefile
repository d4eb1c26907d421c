# Memory checkers over the whole test suite (see docs/reliability.md).
.PHONY: asan valgrind

asan:
	tools/sanitize.sh asan

valgrind:
	tools/sanitize.sh valgrind
