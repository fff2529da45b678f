"""Command line: `python -m analysis report|top|diff`.

Exit status: 0 success (for diff: the runs agree), 1 diff found differences, 2 bad input
(unreadable file, unknown experiment, bad option); errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from .diff import (DEFAULT_IGNORED_ATTRIBUTES, DEFAULT_RTOL, Tolerance, compare_results,
                   format_diff)
from .loader import ResultFileError, load_results
from .wording import counted

EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2
PROGRAM = "python3 -m analysis"
DEFAULT_TOP = 10


class InputError(Exception):
    """A request the file cannot answer, such as an experiment name it does not hold."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Plots, tables and comparisons of causeway result files.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser("report", help="heatmaps, top-k charts and tables, index.html",
                                 description="Write a figure and table for every experiment, "
                                             "comparison plots, and DIR/index.html showing them.")
    report.add_argument("result", metavar="RUN.h5")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for the report")
    report.add_argument("-k", "--top", type=_positive, default=10, metavar="K",
                        help="cells in each top-k chart and table (default 10)")

    top = commands.add_parser("top", help="print the strongest cells (or edges) of each "
                                          "experiment and the kept edges of each circuit")
    top.add_argument("result", metavar="RUN.h5")
    top.add_argument("--experiment", metavar="NAME", help="only this experiment")
    top.add_argument("--circuit", metavar="NAME", help="only this circuit (/circuits/NAME)")
    top.add_argument("-k", "--top", type=_positive, default=None, metavar="K",
                     help=f"cells per experiment and edges per circuit (default {DEFAULT_TOP}; "
                          "with --circuit, every kept edge)")

    diff = commands.add_parser("diff", help="compare two runs of the same config",
                               description="Largest difference per experiment, changed "
                                           "attributes and config keys; exit status 1 when "
                                           "the runs differ. An array differs when max |A - B| "
                                           "> atol + rtol * max |A| (A is the reference).")
    diff.add_argument("first", metavar="A.h5")
    diff.add_argument("second", metavar="B.h5")
    diff.add_argument("--rtol", type=_non_negative, default=DEFAULT_RTOL, metavar="R",
                      help="tolerance relative to the largest |value| of A's array "
                           f"(default {DEFAULT_RTOL:g})")
    diff.add_argument("--atol", "--tolerance", dest="atol", type=_non_negative, default=0.0,
                      metavar="T", help="absolute tolerance added to the relative one "
                                        "(default 0)")
    diff.add_argument("--ignore-attribute", action="append", metavar="NAME",
                      default=list(DEFAULT_IGNORED_ATTRIBUTES),
                      help="attribute never counted as a difference; repeatable "
                           f"(default: {', '.join(DEFAULT_IGNORED_ATTRIBUTES)})")
    return parser


def _run_report(args) -> int:
    from .report import build_report  # matplotlib is only needed here

    result = load_results(args.result)
    if result.incomplete_note:
        print(f"{result.incomplete_note} (the run did not finish; `causeway run --resume` "
              "continues it)")
    report = build_report(result, args.out, args.top)
    print(f"wrote {counted(len(report.figures), 'figure')} and "
          f"{counted(len(report.tables), 'table')}; "
          f"open {report.index}")
    return 0


def _named(kind: str, table: dict, name: str, path: str) -> list:
    if name not in table:
        known = ", ".join(table) or "none"
        raise InputError(f"{path}: no {kind} '{name}' (known: {known})")
    return [table[name]]


def _run_top(args) -> int:
    from .top import format_circuit, format_top

    result = load_results(args.result)
    experiments, circuits = list(result.experiments.values()), list(result.circuits.values())
    if args.experiment is not None or args.circuit is not None:
        experiments = ([] if args.experiment is None else
                       _named("experiment", result.experiments, args.experiment, args.result))
        circuits = ([] if args.circuit is None else
                    _named("circuit", result.circuits, args.circuit, args.result))
    k = args.top or DEFAULT_TOP
    # A circuit asked for by name is listed whole: its edges are the answer, not a ranking.
    circuit_k = args.top if args.circuit is not None else k
    if result.incomplete_note:
        print(f"{result.incomplete_note} (the run did not finish; `causeway run --resume` "
              "continues it)\n")
    sections = ([format_top(e, k) for e in experiments]
                + [format_circuit(c, circuit_k) for c in circuits])
    print("\n\n".join(sections) or "no experiments")
    return 0


def _run_diff(args) -> int:
    a, b = load_results(args.first), load_results(args.second)
    diff = compare_results(a, b, args.ignore_attribute)
    tolerance = Tolerance(rtol=args.rtol, atol=args.atol)
    print(format_diff(diff, a, b, tolerance))
    return EXIT_DIFFERENT if diff.differs(tolerance) else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = {"report": _run_report, "top": _run_top, "diff": _run_diff}[args.command]
    try:
        return run(args)
    except (ResultFileError, InputError, OSError) as e:
        # OSError: an output folder that cannot be written; still one line, not a traceback.
        print(f"{PROGRAM} {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
