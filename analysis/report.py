"""`python -m analysis report`: every figure and table of a result file, and an index page."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import html_page
from .barchart import plot_top_cells
from .circuit_figure import plot_circuit
from .circuits import Circuit
from .comparisons import Comparison, find_comparisons, plot_comparison
from .faithfulness import plot_faithfulness
from .heatmap import plot_heatmap
from .loader import Experiment, ResultFile
from .ranking import RankedCell, per_pair_on_mean_scale, top_cells
from .self_repair import is_self_repair, plot_total_vs_direct
from .tables import write_circuit_csv, write_csv, write_markdown
from .verification import plot_verification

FIGURES_DIR = "figures"
TABLES_DIR = "tables"


@dataclass
class ExperimentSection:
    experiment: Experiment
    heatmap: Path
    top_chart: Path
    csv: Path
    markdown: Path
    cells: list[RankedCell]
    has_spread: bool
    verify_figure: Path | None = None  # attribution runs with a verify/ check
    scatter: Path | None = None  # self_repair: total vs direct effect per component


@dataclass
class ComparisonSection:
    comparison: Comparison
    figure: Path
    correlation: float


@dataclass
class CircuitSection:
    circuit: Circuit
    figure: Path  # the kept edges, layered by layer
    csv: Path  # every kept edge with its score


@dataclass
class Report:
    result: ResultFile
    out_dir: Path
    k: int
    sections: list[ExperimentSection] = field(default_factory=list)
    comparisons: list[ComparisonSection] = field(default_factory=list)
    circuits: list[CircuitSection] = field(default_factory=list)
    faithfulness: Path | None = None  # every circuit's curve in one plot; None without curves
    index: Path | None = None

    @property
    def figures(self) -> list[Path]:
        return ([p for s in self.sections for p in (s.heatmap, s.top_chart)]
                + [s.verify_figure for s in self.sections if s.verify_figure is not None]
                + [s.scatter for s in self.sections if s.scatter is not None]
                + [c.figure for c in self.comparisons]
                + [c.figure for c in self.circuits]
                + ([self.faithfulness] if self.faithfulness is not None else []))

    @property
    def tables(self) -> list[Path]:
        return ([p for s in self.sections for p in (s.csv, s.markdown)]
                + [c.csv for c in self.circuits])


class _FileNames:
    """File-system-safe, unique stems for experiment names, which may hold any character."""

    def __init__(self):
        self._used: set[str] = set()

    def stem(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") or "experiment"
        stem, n = base, 2
        while stem.lower() in self._used:
            stem, n = f"{base}-{n}", n + 1
        self._used.add(stem.lower())
        return stem


def _experiment_section(exp: Experiment, stem: str, out_dir: Path, k: int) -> ExperimentSection:
    per_pair = per_pair_on_mean_scale(exp)
    cells = top_cells(exp, k, per_pair)
    figures_dir, tables_dir = out_dir / FIGURES_DIR, out_dir / TABLES_DIR
    return ExperimentSection(
        experiment=exp,
        heatmap=plot_heatmap(exp, figures_dir / f"{stem}_heatmap.png"),
        top_chart=plot_top_cells(exp, cells, per_pair, figures_dir / f"{stem}_top{k}.png"),
        csv=write_csv(exp, cells, tables_dir / f"{stem}_top{k}.csv"),
        markdown=write_markdown(exp, cells, tables_dir / f"{stem}_top{k}.md"),
        cells=cells,
        has_spread=per_pair is not None,
        verify_figure=(plot_verification(exp, figures_dir / f"{stem}_verify.png")
                       if exp.verify is not None else None),
        scatter=(plot_total_vs_direct(exp, figures_dir / f"{stem}_total_vs_direct.png")
                 if is_self_repair(exp) else None))


def build_report(result: ResultFile, out_dir: str | Path, k: int = 10) -> Report:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(result, out_dir, k)
    names = _FileNames()
    stems = {}
    for exp in result.experiments.values():
        stems[exp.name] = names.stem(exp.name)
        report.sections.append(_experiment_section(exp, stems[exp.name], out_dir, k))
    for comparison in find_comparisons(list(result.experiments.values())):
        figure = (out_dir / FIGURES_DIR /
                  f"compare_{stems[comparison.first.name]}__{stems[comparison.second.name]}.png")
        r = plot_comparison(comparison, figure)
        report.comparisons.append(ComparisonSection(comparison, figure, r))
    for circuit in result.circuits.values():
        stem = names.stem(f"circuit_{circuit.name}")
        report.circuits.append(CircuitSection(
            circuit, plot_circuit(circuit, out_dir / FIGURES_DIR / f"{stem}_graph.png"),
            write_circuit_csv(circuit, out_dir / TABLES_DIR / f"{stem}_edges.csv")))
    report.faithfulness = plot_faithfulness(list(result.circuits.values()),
                                            out_dir / FIGURES_DIR / "faithfulness.png")
    report.index = out_dir / "index.html"
    report.index.write_text(html_page.render(report), encoding="utf-8")
    return report
