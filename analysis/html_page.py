"""The report's index.html: one self-contained page showing every figure and table.

Links are relative, so the report folder can be copied off a cluster and opened anywhere.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .faithfulness import LOG_SCALE_ABOVE
from .ranking import ranking_note, value_note
from .self_repair import scatter_caption
from .tables import baseline_summary, format_number, table_rows
from .top import faithfulness_summary
from .verification import verification_caption

if TYPE_CHECKING:
    from .report import CircuitSection, ComparisonSection, ExperimentSection, Report

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .2em .6em; text-align: left; vertical-align: top; }
td.number { text-align: right; font-family: monospace; }
figure { margin: .5em 0 1.5em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #666; font-size: .9em; }
.banner { background: #fff3cd; border: 1px solid #e0b000; padding: .6em 1em; font-weight: bold; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _link(report: Report, path: Path) -> str:
    return path.relative_to(report.out_dir).as_posix()


def _figure(report: Report, path: Path, caption: str) -> str:
    href = _e(_link(report, path))
    return (f'<figure><a href="{href}"><img src="{href}" alt="{_e(caption)}"></a>'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _key_value_table(items: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f"<table>{rows}</table>"


def _run_summary(report: Report) -> str:
    result = report.result
    meta, data = result.meta, result.data
    items = [("file", str(result.path)), ("schema", result.schema)]
    for key in ("model", "causeway_version", "git_hash"):
        if key in meta:
            items.append((key, meta[key]))
    if "source" in data:
        items.append(("data", str(data["source"])))
    if "lengths" in data:
        items.append(("prompt pairs", str(len(data["lengths"]))))
    for key, label in (("clean_text", "first clean prompt"),
                       ("corrupted_text", "first corrupted prompt"),
                       ("answer_text", "first answer / wrong token")):
        if key in data and len(data[key]):
            value = repr(str(data[key].ravel()[0]))
            if key == "answer_text" and "wrong_text" in data and len(data["wrong_text"]):
                value += " / " + repr(str(data["wrong_text"].ravel()[0]))
            items.append((label, value))
    return _key_value_table(items)


def _baselines(section: ExperimentSection) -> str:
    summary = baseline_summary(section.experiment)
    return f'<p class="note">Baselines, mean over pairs: {_e(summary)}</p>' if summary else ""


def _top_table(section: ExperimentSection) -> str:
    header, rows = table_rows(section.experiment, section.cells)
    numeric = {i for i, h in enumerate(header) if h != "label"}
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="number">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                         for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _experiment(report: Report, section: ExperimentSection, anchor: str) -> str:
    exp = section.experiment
    shape = " x ".join(f"{a.name} {a.size}" for a in exp.axes) or "a single value"
    parts = [f'<h2 id="{anchor}">{_e(exp.name)}</h2>',
             f'<p class="note">Grid: {_e(shape)}; {exp.n_pairs} pairs.</p>',
             _key_value_table(sorted(exp.attributes.items())),
             _baselines(section),
             _figure(report, section.heatmap, f"{exp.name}: mean {exp.metric} over the grid, "
                     f"colours centred on the no-effect value (white: no effect, blue above, "
                     f"red below, grey: undefined). {value_note(exp)}"),
             _figure(report, section.top_chart,
                     f"{exp.name}: top {len(section.cells)}, {ranking_note(exp)}")]
    done, total = exp.items_done
    if done < total:
        parts.insert(1, f'<p class="banner">incomplete: {done} of {total} items done in this '
                        "experiment</p>")
    if section.verify_figure is not None:
        parts.append(_figure(report, section.verify_figure, verification_caption(exp)))
    if section.scatter is not None:
        parts.append(_figure(report, section.scatter, scatter_caption(exp)))
    if not section.has_spread:
        parts.append('<p class="note">No per-pair spread: the file has no per-pair values on '
                     "the mean's scale for this experiment.</p>")
    parts.append(_top_table(section))
    parts.append(f'<p>Top {report.k} table: <a href="{_e(_link(report, section.csv))}">CSV</a>, '
                 f'<a href="{_e(_link(report, section.markdown))}">Markdown</a></p>')
    if exp.uninterpreted:
        parts.append(f'<p class="note">Also in the file, not shown: '
                     f'{_e(", ".join(exp.uninterpreted))}.</p>')
    return "\n".join(parts)


def _comparison(report: Report, section: ComparisonSection) -> str:
    c = section.comparison
    r = "undefined" if math.isnan(section.correlation) else f"{section.correlation:.3f}"
    caption = f"{c.title} ({c.first.name} vs {c.second.name}), Pearson r = {r}"
    return _figure(report, section.figure, caption)


def _circuit(report: Report, section: CircuitSection, anchor: str) -> str:
    circuit = section.circuit
    shown = min(report.k, len(circuit.edges))
    rows = "".join(f'<tr><td class="number">{rank}</td><td>{_e(edge)}</td>'
                   f'<td class="number">{_e(format_number(float(score)))}</td></tr>'
                   for rank, (edge, score) in enumerate(
                       zip(circuit.edges[:shown], circuit.scores[:shown]), start=1))
    parts = [f'<h2 id="{anchor}">circuit {_e(circuit.name)}</h2>',
             _key_value_table(sorted(circuit.attributes.items())
                              + [("edges kept", str(len(circuit.edges)))])]
    summary = faithfulness_summary(circuit)
    if summary:
        parts.append(f'<p class="note">Faithfulness: {_e(summary)}.</p>')
    parts.append(_figure(report, section.figure,
                         f"{circuit.title}: kept edges layered by layer (input at the bottom, "
                         "output at the top), width by |score|, colour and end by the head "
                         "input (Q, K, V), dashed where the score is negative"))
    parts.append(f'<table><tr><th>rank</th><th>edge</th><th>score</th></tr>{rows}</table>')
    parts.append(f'<p>First {shown} of {len(circuit.edges)} edges shown; every edge: '
                 f'<a href="{_e(_link(report, section.csv))}">CSV</a></p>')
    if circuit.uninterpreted:
        parts.append(f'<p class="note">Also in the circuit group, not shown: '
                     f'{_e(", ".join(circuit.uninterpreted))}.</p>')
    return "\n".join(parts)


def _faithfulness(report: Report) -> str:
    caption = ("Faithfulness of every circuit: the metric recovered with the top n edges kept "
               "and the rest ablated (1 = clean run, 0 = every edge ablated); the star marks "
               f"each circuit's own size; log x axis when a curve goes past {LOG_SCALE_ABOVE} "
               "edges")
    return ('<h2 id="faithfulness">Faithfulness</h2>'
            + _figure(report, report.faithfulness, caption))


def render(report: Report) -> str:
    result = report.result
    anchors = {s.experiment.name: f"experiment-{i}" for i, s in enumerate(report.sections)}
    contents = "".join(f'<li><a href="#{anchors[s.experiment.name]}">{_e(s.experiment.name)}</a>'
                       f" ({_e(s.experiment.kind)})</li>" for s in report.sections)
    if report.comparisons:
        contents += '<li><a href="#comparisons">Comparisons</a></li>'
    circuit_anchors = [f"circuit-{i}" for i in range(len(report.circuits))]
    contents += "".join(f'<li><a href="#{a}">circuit {_e(c.circuit.name)}</a> '
                        f"({_e(c.circuit.method)})</li>"
                        for a, c in zip(circuit_anchors, report.circuits))
    if report.faithfulness is not None:
        contents += '<li><a href="#faithfulness">Faithfulness</a></li>'
    body = [f"<h1>causeway report: {_e(result.path.name)}</h1>"]
    if result.incomplete_note:
        body.append(f'<p class="banner" id="incomplete">{_e(result.incomplete_note)}: the run '
                    "did not finish, so its values are partial or missing; `causeway run "
                    "--resume` continues it.</p>")
    body += [_run_summary(report), f"<ul>{contents}</ul>"]
    if not report.sections:
        body.append('<p class="note">The file holds no experiments that can be shown.</p>')
    body += [_experiment(report, s, anchors[s.experiment.name]) for s in report.sections]
    if report.comparisons:
        body.append('<h2 id="comparisons">Comparisons</h2><p class="note">Experiments with the '
                    "same grid whose settings differ in one attribute, cell by cell.</p>")
        body += [_comparison(report, c) for c in report.comparisons]
    body += [_circuit(report, c, a) for a, c in zip(circuit_anchors, report.circuits)]
    if report.faithfulness is not None:
        body.append(_faithfulness(report))
    if result.skipped:
        body.append("<h2>Not shown</h2>" + _key_value_table(sorted(result.skipped.items())))
    if result.other_groups:
        body.append(f'<p class="note">Other groups in the file: '
                    f'{_e(", ".join(result.other_groups))}.</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>causeway report: {_e(result.path.name)}</title><style>{_STYLE}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")
