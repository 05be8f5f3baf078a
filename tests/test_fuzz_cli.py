"""Bad values for every option of every command (issue 17): each is refused before any
work with exit status 2 and one stderr line naming the option, and nothing is written.

The table is generated from the click commands themselves (every option that takes a
value gets values of the wrong type), plus a curated table of values of the right type
outside their range (huge sizes tied to memory, negative or non-finite numbers, foreign
and binary files, TOML values of the wrong type). The commands run in this process
through :func:`spinicl.cli.main` (the console entry point), in an empty directory.
"""

from __future__ import annotations

import os

import click
import pytest

from spinicl.cli import cli, main

HUGE = str(10**12)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def _wrong_type_values(opt: click.Option) -> list[str]:
    t = opt.type
    if isinstance(t, click.types.IntParamType | click.IntRange):
        return ["abc", "1.5"]
    if isinstance(t, click.types.FloatParamType | click.FloatRange):
        return ["abc"]
    if isinstance(t, click.Choice):
        return ["no-such-choice"]
    return []


def _generated_cases() -> list[tuple[list[str], str]]:
    cases = []
    for path, cmd in _commands(cli):
        args = ["x.h5"] * sum(isinstance(p, click.Argument) and p.required
                              for p in cmd.params)
        for opt in cmd.params:
            if not isinstance(opt, click.Option) or opt.is_flag or opt.count:
                continue
            name = max(opt.opts, key=len)
            for value in _wrong_type_values(opt):
                cases.append(([*path, *args, name, value], name))
    return cases


#: Values of the right type outside their range: sizes tied to memory, non-finite or
#: negative numbers, files that are not what the option expects.
CURATED: list[tuple[list[str], str]] = [
    (["sample", "--P", HUGE], "--P"),
    (["sample", "--N", HUGE], "--N"),
    (["sample", "--D", HUGE], "--D"),
    (["sample", "--test-prompts", HUGE], "--test-prompts"),
    (["sample", "--P", "100000000", "--N", "1000"], "--P"),  # prompts beyond the RAM
    (["sample", "--model", "factored", "--dk", "100000000"], "--dk"),
    (["sample", "--steps", str(10**15)], "--steps"),
    (["sample", "--burn-in", str(10**15)], "--burn-in"),
    (["sample", "--steps", "0"], "--steps"),
    (["sample", "--copies", "0"], "--copies"),
    (["sample", "--copies", "100000"], "--copies"),
    (["sample", "--temps", "1e-5:1e-1:100000000"], "--temps"),
    (["sample", "--temps", "0:1:5"], "--temps"),
    (["sample", "--temps", "nan,1"], "--temps"),
    (["sample", "--beta", "-1"], "--beta"),
    (["sample", "--beta", "inf"], "--beta"),
    (["sample", "--lam", "-1"], "--lam"),
    (["sample", "--lam", "nan"], "--lam"),
    (["sample", "--sigma-x", "0"], "--sigma-x"),
    (["sample", "--rho", "1"], "--rho"),
    (["sample", "--seed", "-1"], "--seed"),
    (["sample", "--K", "0"], "--K"),
    (["sample", "--step", "-1"], "--step"),
    (["sample", "--gamma", "inf"], "--gamma"),
    (["sample", "--record-every", "0"], "--record-every"),
    (["sample", "--memory-budget", "lots"], "--memory-budget"),
    (["sample", "--memory-budget", "-1GB"], "--memory-budget"),
    (["sample", "-o", ""], "--out"),
    (["sample", "-o", "."], "--out"),
    (["sample", "-o", "no/such/dir/r.h5"], "--out"),
    (["sample", "--config", "missing.toml"], "--config"),
    (["sample", "--config", "."], "--config"),
    (["sample", "--config", "@binary"], "--config"),
    (["sample", "--config", "@adapt_ladder = \"false\""], "--adapt-ladder"),
    (["sample", "--config", "@quiet = \"yes please\""], "--quiet"),
    (["sample", "--config", "@steps = 1.5"], "--steps"),
    (["sample", "--config", "@bogus = 1"], "--config"),
    (["sample", "--config", "@sampler = \"nope\""], "--sampler"),
    (["sample", "--init", "sideways"], "--init"),
    (["sample", "--init", "missing.npy"], "--init"),
    (["theory", "--model", "factored", "--restarts", "0"], "--restarts"),
    (["export-target", "no-such-target", "-o", "t.h5"], "NAME"),
    (["export-target", "tiny-merged", "-o", "."], "--out"),
    (["train", "--P", HUGE], "--P"),
    (["train", "--dk", "100000000"], "--dk"),
    (["theory", "--test-prompts", HUGE], "--test-prompts"),
    (["theory", "--beta", "-1"], "--beta"),
    (["bench", "--replicas", str(10**9)], "--replicas"),
    (["compare", "x.h5", "y.h5", "--temperature", "-1"], "--temperature"),
    (["compare", "x.h5", "y.h5", "--temperature", "nan"], "--temperature"),
    (["sweep", "missing.toml"], "--config"),
    (["sweep", "@binary"], "--config"),
    (["sweep", "--preset", "nope"], "--preset"),
    (["sweep", "--preset", "theory-demo", "--workers", "0"], "--workers"),
    (["sweep", "--preset", "theory-demo", "-o", ""], "--out"),
    (["sweep", "--preset", "theory-demo", "--executor", "dask", "--scheduler",
      "not an address"], "--scheduler"),
    (["info", "missing.h5"], "PATH"),
    (["info", "."], "PATH"),
    (["info", "@binary"], "PATH"),
    (["resume", "@binary"], "PATH"),
    (["export", "@binary", "-o", "x.csv"], "PATH"),
    (["export", ".", "-o", "x.csv"], "PATH"),
    (["plot", "phase", "@binary"], "PATH"),
    (["plot", "trace", "x.h5", "-o", ""], "--out"),
    (["plot", "trace", "x.h5", "-o", "no/such/dir/t.png"], "--out"),
    (["plot", "overlap", "x.h5", "-o", ""], "--out"),
    (["plot", "overlap", "x.h5", "-o", "no/such/dir/pq.png"], "--out"),
    (["plot", "overlap", "@binary"], "PATH"),
    (["plot", "overlap", "."], "PATH"),
    (["plot", "phase", "x.h5", "-o", "p.txt"], "--out"),
    (["plot", "cut", "x.h5", "-o", ""], "--out"),
    (["plot", "trace", "x.h5", "-o", "/sys/t.png"], "--out"),
    (["compare", "x.h5", "y.h5", "--plot", "c.txt"], "--plot"),
    (["sample", "--overrelax", "0.3"], "--overrelax"),
    (["free-energy", "--T", "0"], "--T"),
    (["free-energy", "--lam", "-1"], "--lam"),
    (["free-energy", "--model", "merged", "--dk", "3"], "--dk"),
    (["theory", "--model", "merged", "--dk", "3"], "--dk"),
    (["sample", "--dk", "3"], "--dk"),
    (["train", "--model", "merged", "--dk", "3"], "--dk"),
    (["bench", "--dk", "3"], "--dk"),
    (["bench", "--suite", ""], "--suite"),
    (["bench", "--suite", "tiny", "--samplers", ","], "--samplers"),
    (["bench", "--suite", "tiny", "--replicas", "0"], "--replicas"),
    (["bench", "--suite", "tiny", "--plot", "s.txt"], "--plot"),
    (["export-target", "tiny-merged", "-o", "/sys/t.h5"], "--out"),
]


def _materialise(argv: list[str]) -> list[str]:
    """``@binary`` → a binary file, ``@text`` → a TOML file holding ``text``."""
    out = []
    for i, a in enumerate(argv):
        if a.startswith("@"):
            name = f"in{i}.toml"
            data = os.urandom(256) if a == "@binary" else (a[1:] + "\n").encode()
            with open(name, "wb") as fh:
                fh.write(b"\xff\xfe" + data if a == "@binary" else data)
            a = name
        out.append(a)
    return out


def _listing() -> dict[str, tuple[int, float]]:
    return {n: (os.stat(n).st_size, os.stat(n).st_mtime) for n in os.listdir(".")}


CASES = _generated_cases() + CURATED


@pytest.mark.parametrize("argv, option", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_is_one_line_exit_2_and_writes_nothing(argv, option, tmp_path,
                                                         monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = _materialise(argv)
    before = _listing()
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    named = {option, option.lower()}
    if option in ("--config", "PATH"):  # a file argument is named by its path
        files = [a for a in argv if a.endswith((".toml", ".h5")) or a == "."]
        named |= {f"{a}:" for a in files} | {f"'{a}'" for a in files}
    assert any(n in lines[0] for n in named), (option, err)
    assert "Traceback" not in err
    assert _listing() == before  # nothing created or changed


def test_the_table_covers_every_command():
    covered = {tuple(a[:2]) if a[0] == "plot" else (a[0],) for a, _ in CASES}
    every = {p for p, _ in _commands(cli)}
    missing = {p for p in every if p not in covered and p[:1] not in covered}
    assert not missing, missing


@pytest.mark.parametrize("argv, line", [
    (["sample", "--overrelax", "0.3"],
     "--overrelax must be used only with --sampler gibbs (got 0.3)"),
    (["theory", "--T", "0"], "--T must be > 0 (got 0.0): the temperature T = 1/beta"),
    (["bench", "--suite", "tiny", "--replicas", "0"],
     "--replicas must be an integer in 2..100000 with --suite"),
    (["bench", "--replicas", "0"], "--replicas must be an integer in 1..100000 (got 0)"),
])
def test_refusals_read_as_sentences(argv, line, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1
    assert lines[0].startswith("spinicl: error: " + line), lines
