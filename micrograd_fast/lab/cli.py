"""The ``micrograd-fast`` command (also ``python -m micrograd_fast``)."""

import argparse
import sys

from micrograd_fast._version import __version__


def _nonnegative_int(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {n}")
    return n


def _add_engine_option(parser):
    parser.add_argument(
        "--engine",
        choices=("compiled", "pure"),
        default=None,
        help="the compiled core or the pure-Python engine (default: the one "
        "micrograd_fast selects, i.e. compiled unless "
        "MICROGRAD_FAST_NO_EXTENSIONS=1)",
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="micrograd-fast",
        description="Watch backpropagation work: micrograd_fast's demos and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="train the moons MLP and plot its decision boundary",
        description="Train MLP(2, [16, 16, 1]) on 100 'moons' points with a hinge "
        "loss and SGD, showing progress, then plot the decision boundary and the "
        "loss curve.",
    )
    demo.add_argument("--steps", type=_nonnegative_int, default=100,
                      help="training steps (default 100)")
    demo.add_argument("--plot", default=None, metavar="PATH",
                      help="decision-boundary picture (default moons.png, drawn "
                      "when matplotlib is installed); the loss curve goes next to "
                      "it as <name>_loss.<ext>")
    demo.add_argument("--no-plot", action="store_true",
                      help="train only, draw nothing (matplotlib not needed)")
    demo.add_argument("--animate", default=None, metavar="PATH",
                      help="also write an animation of the decision boundary as the "
                      "model trains, with the loss curve beside it: PATH.gif (Pillow) "
                      "or PATH.html (matplotlib's JavaScript animation)")
    demo.add_argument("--seed", type=int, default=1337,
                      help="seed for Python's and NumPy's generators (default 1337)")
    _add_engine_option(demo)

    run = sub.add_parser(
        "run",
        help="run a script written for micrograd on micrograd_fast",
        description="Run SCRIPT.py as __main__ with 'micrograd' imports "
        "(micrograd.engine, micrograd.nn, ...) served by micrograd_fast, even "
        "if micrograd itself is installed; any real micrograd package or module "
        "this hides is named on stderr first. Arguments after the script go to it.",
    )
    _add_engine_option(run)
    run.add_argument("--replace-value", action="store_true",
                     help="the script, or a module beside it that it imports, defines "
                     "its own top-level 'class Value': bind that name to "
                     "micrograd_fast's Value right after the class statement, and add "
                     "the methods that class has and ours lacks to ours for the run "
                     "(said on stderr); --replace-value=MODULE replaces the class of "
                     "that module only")
    run.add_argument("--replace-value-module", metavar="MODULE", default=None,
                     help=argparse.SUPPRESS)
    run.add_argument("script", metavar="SCRIPT.py")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")

    walk = sub.add_parser(
        "walkthrough",
        help="backpropagation by hand on the lecture's small expression",
        description="Compute L = (a*b + c) * f forward and backward step by step, "
        "printing local derivatives and chain-rule products, then check the "
        "gradients against finite differences.",
    )
    walk.add_argument("--graph", metavar="PATH", default=None,
                      help="also draw the expression graph to PATH (.svg, .png, "
                      ".pdf; needs graphviz and Graphviz's dot)")
    walk.add_argument("--html", metavar="PATH", default=None,
                      help="also write a page that steps through the forward and "
                      "backward pass one node at a time (open it in a browser; "
                      "needs graphviz and Graphviz's dot)")
    walk.add_argument("--topo", action="store_true",
                      help="instead: why backward() runs in topological order, on "
                      "graphs where naive recursive backward passes go wrong")
    _add_engine_option(walk)
    return parser


def _split_replace_value(argv):
    """--replace-value=MODULE as two options argparse can read (a plain
    --replace-value takes no value: the script's name follows it); only
    the command's own options, before the script, are looked at."""
    out = []
    for k, arg in enumerate(argv):
        if arg.startswith("--replace-value="):
            out += ["--replace-value", "--replace-value-module", arg.split("=", 1)[1]]
        elif not arg.startswith("-") and k > 0 and out and out[0] == "run":
            return out + list(argv[k:])
        else:
            out.append(arg)
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_split_replace_value(argv))

    from micrograd_fast.lab.engines import use_engine

    try:
        engine = use_engine(args.engine)
    except ImportError as exc:
        print(f"micrograd-fast: {exc}", file=sys.stderr)
        return 2

    if args.command == "demo":
        from micrograd_fast.lab.demo import run_demo

        try:
            run_demo(steps=args.steps,
                     plot=None if args.no_plot else (args.plot or "moons.png"),
                     seed=args.seed, plot_required=args.plot is not None,
                     animation_path=args.animate)
        except (ImportError, OSError, ValueError) as exc:
            print(f"micrograd-fast: {exc}", file=sys.stderr)
            return 2
        return 0

    if args.command == "walkthrough" and args.topo:
        from micrograd_fast.lab.topo import report

        return 0 if report(engine.Value) else 1

    if args.command == "walkthrough":
        from micrograd_fast.lab.walkthrough import walkthrough

        try:
            ok = walkthrough(engine.Value, graph=args.graph, html=args.html)
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            print(f"micrograd-fast: {exc}", file=sys.stderr)
            return 2
        return 0 if ok else 1

    if args.command == "run":
        from micrograd_fast.lab.run import (NoValueClass, ScriptNotFound, run_script,
                                            script_traceback)

        try:
            run_script(args.script, args.args, announce=sys.stderr,
                       replace_value_class=args.replace_value_module or args.replace_value)
        except NoValueClass as exc:
            print(f"micrograd-fast: --replace-value: {exc}", file=sys.stderr)
            return 2
        except ScriptNotFound as exc:
            print(f"micrograd-fast: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # the script's own, reported as python reports it
            sys.stderr.write(script_traceback(exc, args.script))
            return 1
        return 0

    raise AssertionError(args.command)  # argparse only lets known ones through
