#!/usr/bin/env python3
"""Long fuzzing campaign: tests/test_fuzz.py again and again with many
examples and a fresh seed each round, until a time budget runs out.

    python tools/fuzz_campaign.py --minutes 20 --examples 5000

Each round is one pytest process (so a crash of the compiled core ends only
that round and is reported with its seed).  A failing round's output is
kept in build/fuzz/round-<seed>.log; hypothesis prints the shrunk failing
program there, to be added to test_fuzz.py as an @example.  Exit status 1
when any round failed.
"""

import argparse
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--examples", type=int, default=5000,
                    help="hypothesis examples per test and round")
    ap.add_argument("-k", default="traces_are_identical or upstream",
                    help="which fuzz tests to run (pytest -k)")
    args = ap.parse_args()

    out_dir = os.path.join(ROOT, "build", "fuzz")
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, MICROGRAD_FAST_FUZZ_EXAMPLES=str(args.examples))
    deadline = time.monotonic() + 60.0 * args.minutes
    rounds = failures = 0
    start = time.monotonic()
    while time.monotonic() < deadline:
        seed = random.randrange(2**32)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/test_fuzz.py", "-k", args.k, f"--hypothesis-seed={seed}"]
        t0 = time.monotonic()
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        rounds += 1
        last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"round {rounds} seed {seed}: rc {r.returncode}, {time.monotonic() - t0:.0f} s: {last}",
              flush=True)
        if r.returncode != 0:
            failures += 1
            with open(os.path.join(out_dir, f"round-{seed}.log"), "w") as f:
                f.write(r.stdout + "\n--- stderr ---\n" + r.stderr)
    total = time.monotonic() - start
    print(f"{rounds} rounds, {rounds * args.examples} examples per test, "
          f"{failures} failed, {total / 60:.1f} minutes", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
