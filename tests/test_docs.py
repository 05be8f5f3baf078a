"""The repository is self-contained: what its texts cite exists, and the paper's tables agree.

* Every relative file reference (``*.md``, ``docs/…``, ``scripts/…``, ``bench/…``,
  ``spinicl/…``, ``tests/…``, and markdown link targets) in the READMEs, ``docs/*.md``,
  ``bench/*.md``, the docstrings, comments and strings of ``spinicl/**/*.py`` and
  ``scripts/*.py``, and the ``--help`` of every ``spinicl`` command resolves to a file or
  folder of the repository (relative to its root, or to the citing file's folder).
* Every ``docs/model.md §X.Y`` citation names a section heading of ``docs/model.md``.
* No text cites material users cannot see: ``/work/``, ``shared/``, ``DESIGN`` or an
  internal issue ("issue 8", "the issue").
* The paper's tables in ``docs/paper-reference.md`` equal the arrays the figure scripts
  draw as the paper's data.
"""

from __future__ import annotations

import importlib
import io
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from spinicl.cli import cli

ROOT = Path(__file__).resolve().parent.parent

#: A relative path into the repository, or any ``*.md`` name.
REF = re.compile(r"(?<![\w/.~$:-])((?:docs|scripts|bench|spinicl|tests)/[\w./*<>{}-]*"
                 r"|[\w./-]*\w\.md)\b")
#: Markdown link targets: [text](target).
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: Citations of material outside the repository or of internal issues.
FORBIDDEN = re.compile(r"/work/|\bshared/|(?-i:DESIGN)|\bissues?\s*(?:#\s*)?\d+|\bissue:"
                       r"|\bthe (?:benchmark )?issue\b", re.IGNORECASE)
#: A citation of a section of docs/model.md: "model.md §1.3", "model.md §1.1–1.2, §1.5".
SECTION_CITE = re.compile(r"model\.md[`'\")]*\s*((?:§\s*[\d.]+(?:\s*[–-]\s*[\d.]+)?[,;\s]*)+)")


# --------------------------------------------------------------------------- texts
def _markdown_files() -> list[Path]:
    return sorted([ROOT / "README.md", ROOT / "scripts" / "README.md",
                   *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.md")])


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "spinicl").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])


def _python_text(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and string literal (docstrings, help texts)."""
    kinds = {tokenize.COMMENT, tokenize.STRING}
    if hasattr(tokenize, "FSTRING_MIDDLE"):  # Python >= 3.12
        kinds.add(tokenize.FSTRING_MIDDLE)
    src = path.read_text(encoding="utf-8")
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type in kinds:
            yield tok.start[0], tok.string


def _commands() -> Iterator[tuple[list[str], click.Command]]:
    def walk(cmd: click.Command, path: list[str]):
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])

    yield from walk(cli, [])


def _help_texts() -> list[tuple[str, str]]:
    runner = CliRunner()
    out = []
    for path, _ in _commands():
        # a wide terminal: click must not wrap (or hyphen-split) a path
        res = runner.invoke(cli, [*path, "--help"], terminal_width=10_000,
                            max_content_width=10_000)
        assert res.exit_code == 0, (path, res.output)
        out.append((" ".join(["spinicl", *path, "--help"]), res.output))
    return out


def _sources() -> list[tuple[str, Path, list[tuple[int, str]]]]:
    """(label, folder references are relative to, [(line, text)]) of every text."""
    out = []
    for p in _markdown_files():
        lines = p.read_text(encoding="utf-8").splitlines()
        out.append((str(p.relative_to(ROOT)), p.parent, list(enumerate(lines, 1))))
    for p in _python_files():
        out.append((str(p.relative_to(ROOT)), p.parent, list(_python_text(p))))
    return out


SOURCES = _sources()
HELP = _help_texts()
ALL = SOURCES + [(label, ROOT, list(enumerate(text.splitlines(), 1)))
                 for label, text in HELP]
IDS = [label for label, _, _ in ALL]


# --------------------------------------------------------------------------- checks
def _resolves(ref: str, base: Path) -> bool:
    ref = ref.split("#")[0].rstrip(".,;:")
    if not ref or any(c in ref for c in "*<>{}"):  # globs and templates
        return True
    return (ROOT / ref).exists() or (base / ref).exists()


def _missing(base: Path, lines: list[tuple[int, str]]) -> list[str]:
    bad = []
    for line, text in lines:
        refs = [m.group(1) for m in REF.finditer(text)]
        refs += [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
        bad += [f"line {line}: {r}" for r in refs if not _resolves(r, base)]
    return bad


def _forbidden(lines: list[tuple[int, str]]) -> list[str]:
    bad = []
    for line, text in lines:
        for m in FORBIDDEN.finditer(text):
            snippet = " ".join(text[max(0, m.start() - 40):m.end() + 40].split())
            bad.append(f"line {line}: {m.group(0)!r} in …{snippet}…")
    return bad


def test_sources_found():
    labels = {label for label, _, _ in ALL}
    assert {"README.md", "scripts/README.md", "docs/model.md", "docs/paper-reference.md",
            "spinicl/cli.py", "scripts/_common.py", "spinicl --help",
            "spinicl plot phase --help"} <= labels
    assert len(HELP) >= 12


@pytest.mark.parametrize("label,base,lines", ALL, ids=IDS)
def test_references_resolve(label, base, lines):
    bad = _missing(base, lines)
    assert not bad, f"{label} cites files that are not in the repository:\n" + "\n".join(bad)


@pytest.mark.parametrize("label,base,lines", ALL, ids=IDS)
def test_no_internal_citations(label, base, lines):
    bad = _forbidden(lines)
    assert not bad, (f"{label} cites material outside the repository or internal issues:\n"
                     + "\n".join(bad))


def _model_sections() -> set[str]:
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    heading = re.compile(r"^#+\s+(\d+(?:\.\d+)*)[.\s]", re.MULTILINE)
    return {m.group(1) for m in heading.finditer(text)}


def _section_numbers(cite: str) -> list[str]:
    out = []
    for part in re.findall(r"[\d.]+(?:\s*[–-]\s*[\d.]+)?", cite):
        ends = [e.strip().rstrip(".") for e in re.split(r"[–-]", part)]
        if len(ends) == 2 and ends[0].count(".") == 1 and ends[1].count(".") == 1:
            major, lo = ends[0].split(".")
            major2, hi = ends[1].split(".")
            ends = [f"{major}.{k}" for k in range(int(lo), int(hi) + 1)] if major == major2 \
                else ends
        out += [e for e in ends if e]
    return out


def test_model_sections_cited_exist():
    sections = _model_sections()
    assert {"1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "2", "3", "4", "5"} <= sections
    texts = [(label, lines) for label, _, lines in ALL]
    texts += [(str(p.relative_to(ROOT)), list(_python_text(p)))
              for p in sorted((ROOT / "tests").glob("*.py"))]
    bad = []
    for label, lines in texts:
        for line, text in lines:
            for m in SECTION_CITE.finditer(text):
                for s in _section_numbers(m.group(1)):
                    if s not in sections:
                        bad.append(f"{label} line {line}: §{s}")
    assert not bad, "docs/model.md has no such section:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- paper tables
def _paper_tables() -> dict[str, list[list[str]]]:
    """The tables of docs/paper-reference.md by section ("Fig. 4b", ...): every table of
    the section concatenated (body rows only, cells as text)."""
    text = (ROOT / "docs" / "paper-reference.md").read_text(encoding="utf-8")
    tables: dict[str, list[list[str]]] = {}
    section = None
    for line in text.splitlines():
        m = re.match(r"^## (Fig\. \w+)", line)
        if m:
            section = m.group(1)
            continue
        if section and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r"-+", c) for c in cells):
                continue
            tables.setdefault(section, []).append(cells)
    return tables


def _numbers(rows: list[list[str]], width: int) -> np.ndarray:
    """The rows with exactly ``width`` numeric cells (nan allowed), as an array."""
    out = []
    for r in rows:
        try:
            vals = [float(c) for c in r]
        except ValueError:
            continue
        if len(vals) == width:
            out.append(vals)
    return np.array(out)


@pytest.fixture(scope="module")
def scripts_data():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        common = importlib.import_module("_common")
        figS1a = importlib.import_module("figS1a_double_descent")
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return common, figS1a


def test_paper_tables_match_scripts(scripts_data):
    common, figS1a = scripts_data
    t = _paper_tables()
    assert set(t) >= {"Fig. 4b", "Fig. 4a", "Fig. S1a", "Fig. S4"}
    np.testing.assert_array_equal(_numbers(t["Fig. 4b"], 5), common.PAPER_FIG4B)
    np.testing.assert_array_equal(_numbers(t["Fig. S1a"], 5), figS1a.PAPER_FIG_S1A)
    np.testing.assert_array_equal(_numbers(t["Fig. S4"], 3), common.PAPER_FIGS4)
    fig4a = _numbers(t["Fig. 4a"], 3)  # P | N = 2 | N = 100
    np.testing.assert_array_equal(fig4a[:, 0], common.PAPER_FIG4A_P)
    assert sorted(common.PAPER_FIG4A_ROWS) == [2, 100]
    np.testing.assert_array_equal(fig4a[:, 1], common.PAPER_FIG4A_ROWS[2])
    np.testing.assert_array_equal(fig4a[:, 2], common.PAPER_FIG4A_ROWS[100])


def test_paper_counts_match_scripts(scripts_data):
    common, figS1a = scripts_data
    text = " ".join((ROOT / "docs" / "paper-reference.md").read_text(encoding="utf-8").split())
    assert (f"{common.PAPER_FIG4A_NAN_CELLS} of the {common.PAPER_FIG4A_CELLS} cells are NaN"
            in text)
    assert "the finite values range from 0.194 to 0.871" in text
    sections = {m.group(1): m.group(2) for m in re.finditer(
        r"## (Fig\. \w+)(.*?)(?=## Fig\.|\Z)", text)}
    assert f"{common.PAPER_FIG4B_REPEATS} disorder samples per N" in sections["Fig. 4b"]
    assert f"{common.PAPER_FIG4A_REPEATS} repeats per cell" in sections["Fig. 4a"]
    assert f"{figS1a.PAPER_SEEDS} repeats" in sections["Fig. S1a"]
    assert f"{common.PAPER_FIGS4_REPEATS} repeats" in sections["Fig. S4"]


def test_scanner_catches_bad_citations(tmp_path):
    """The checks themselves: a missing file, a section and internal citations are caught."""
    lines = [(1, "see docs/nowhere.md and `spinicl/missing.py`"), (2, "[x](output/none.png)"),
             (3, "fine: docs/model.md, scripts/README.md, spinicl/, bench/*.py")]
    assert [b.split(": ")[1] for b in _missing(ROOT, lines)] == [
        "docs/nowhere.md", "spinicl/missing.py", "output/none.png"]
    bad = _forbidden([(1, "as DESIGN §3 says"), (2, "(issue 8 item 4)"),
                      (3, "/work/shared/x"), (4, "see the issue"), (5, "by design")])
    assert [b.split(":")[0] for b in bad] == ["line 1", "line 2", "line 3", "line 3",
                                              "line 4"]
    assert _section_numbers("§1.1–1.3, §5") == ["1.1", "1.2", "1.3", "5"]
