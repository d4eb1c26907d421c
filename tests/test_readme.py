"""The README's commands are the ones CI runs."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
EXTRACT = os.path.join(ROOT, ".ci", "readme_commands.py")
CI_RUN = os.path.join(ROOT, ".ci", "run")

needs_ci = pytest.mark.skipif(
    not (os.path.exists(EXTRACT) and os.path.exists(README)),
    reason="the README and .ci/ are not next to the tests (an sdist or a copy of tests/)",
)


@needs_ci
def test_ci_reads_the_quick_start_commands_from_the_readme():
    out = subprocess.run([sys.executable, EXTRACT, README], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    commands = out.splitlines()
    assert len(commands) == 2
    install_viz, install_test = commands
    assert install_viz.startswith('pip install ".[viz]" && micrograd-fast demo')
    assert install_test.startswith('pip install ".[test]" && pytest')
    with open(README, encoding="utf-8") as fh:
        readme_lines = fh.read().splitlines()
    for command in commands:  # verbatim, comments and all
        assert command in readme_lines


@needs_ci
def test_ci_runs_the_extracted_commands_first():
    with open(CI_RUN, encoding="utf-8") as fh:
        script = fh.read()
    extract = script.index("readme_commands.py README.md")
    assert script.index('bash -c "$cmd"') > extract
    for later in ("pytest -m", "python -m build", "mypy.stubtest"):
        assert script.index(later) > extract, later


@needs_ci
def test_development_section_starts_with_an_editable_install():
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    dev = text[text.index("## Development"):]
    block = dev[dev.index("```bash") + len("```bash"):]
    first = block.strip().splitlines()[0]
    assert first.startswith('pip install -e ".[test]"')
