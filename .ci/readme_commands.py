"""Print the README's quick-start commands, one per line, exactly as written.

usage: python3 .ci/readme_commands.py [README]

They are the lines of the README's first ```bash block: the commands a new
user copies.  .ci/run runs each of them verbatim (comments included) in its
own fresh virtual environment, so what CI runs cannot drift from what the
README says.  Plain Python, no third-party import: it runs before anything
is installed.
"""

import sys
from pathlib import Path


def quick_start(text):
    """The non-empty lines of the first ```bash block of ``text``."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "```bash")
    except StopIteration:
        raise SystemExit("readme_commands: the README has no ```bash block") from None
    commands = []
    for line in lines[start + 1:]:
        if line.strip().startswith("```"):
            break
        if line.strip():
            commands.append(line.strip())
    if not commands:
        raise SystemExit("readme_commands: the README's first ```bash block is empty")
    return commands


def main(argv):
    readme = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "README.md"
    for command in quick_start(readme.read_text(encoding="utf-8")):
        print(command)


if __name__ == "__main__":
    main(sys.argv)
