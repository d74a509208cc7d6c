"""Every command line the documentation shows goes through the real argument parser, so a renamed
or removed flag fails the build instead of the reader: `evalkit ...` lines (also when started as
`-m evalkit.cli`), the benchmark scripts' lines, and `make` lines (their targets must exist).

Documentation is README.md and every Markdown file under docs/ (docs/incoming/ included). Lines
come from shell code blocks (continuations joined, comments dropped) and from inline code spans
in the prose. A bare `...` token is the docs' elision ("options as above") and is left out; an
inline span that is only `evalkit <command>` names the command and is checked for existence only.
Nothing is executed: parse_args only."""
from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = {"", "sh", "bash", "shell", "console"}
FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Shown:
    """One command line as the docs show it."""
    where: str  # file:line
    tool: str  # evalkit | make | benchmarks.run | benchmarks.grid | gpu_check
    argv: tuple[str, ...]
    inline: bool


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations; keep the first line's number."""
    out, buf, start = [], "", None
    for n, line in lines:
        if start is None:
            start = n
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        out.append((start, buf + stripped))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def _classify(tokens: list[str]) -> tuple[str, list[str]] | None:
    """(tool, its arguments) for a command line the test knows how to check, else None."""
    if tokens and tokens[0] == "$":
        tokens = tokens[1:]
    if not tokens:
        return None
    rest = [t for t in tokens if t != "..."]
    if tokens[0] in ("evalkit", ".venv/bin/evalkit"):
        return "evalkit", rest[1:]
    if "-m" in tokens:
        i = tokens.index("-m")
        module = tokens[i + 1] if i + 1 < len(tokens) else ""
        after = [t for t in tokens[i + 2:] if t != "..."]
        if module == "evalkit.cli":
            return "evalkit", after
        if module in ("benchmarks.run", "benchmarks.grid") and tokens[0].endswith(("python", "python3")):
            return module, after
    if tokens[0] == "bash" and len(tokens) > 1 and tokens[1].endswith("benchmarks/gpu_check.sh"):
        args, skip = [], False
        for t in rest[2:]:  # --wheels DIR is the shell wrapper's own option
            if skip:
                skip = False
            elif t == "--wheels":
                skip = True
            else:
                args.append(t)
        return "gpu_check", args
    if tokens[0] == "make":
        return "make", rest[1:]
    return None


def _tokens(text: str) -> list[str] | None:
    try:
        return shlex.split(text, comments=True)
    except ValueError:  # not shell (an unbalanced quote in prose)
        return None


def extract(text: str, name: str) -> list[Shown]:
    """The command lines of one Markdown text."""
    found: list[Shown] = []
    prose: list[str] = []
    block: list[tuple[int, str]] | None = None
    lang = ""
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and block is None:
            block, lang = [], m.group(1).lower()
            prose.append("")
            continue
        if m and block is not None:
            if lang in SHELL_FENCES:
                for start, logical in _logical_lines(block):
                    toks = _tokens(logical)
                    hit = _classify(toks) if toks else None
                    if hit:
                        found.append(Shown(f"{name}:{start}", hit[0], tuple(hit[1]), False))
            block = None
            prose.append("")
            continue
        if block is not None:
            block.append((n, line))
            prose.append("")
        else:
            prose.append(line)
    # inline spans may wrap onto the next line; count newlines to name the span's line
    joined = "\n".join(prose)
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", joined):
        span = m.group(1).replace("\n", " ").strip()
        if not re.match(r"^(\$ )?(evalkit|make|python3? -m (evalkit\.cli|benchmarks\.\w+)|bash benchmarks/gpu_check\.sh)( |$)",
                        span):
            continue
        toks = _tokens(span)
        hit = _classify(toks) if toks else None
        if hit:
            found.append(Shown(f"{name}:{joined.count(chr(10), 0, m.start()) + 1}", hit[0], tuple(hit[1]), True))
    return found


def all_shown() -> list[Shown]:
    out = []
    for path in doc_files():
        out += extract(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return out


def make_targets(makefile: Path = ROOT / "Makefile") -> set[str]:
    targets = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


@functools.lru_cache(maxsize=1)
def _parsers():
    from benchmarks import gpu_check, grid, run
    from evalkit.cli.commands import build_parser

    return {"evalkit": build_parser(), "benchmarks.run": run.build_parser(), "benchmarks.grid": grid.build_parser(),
            "gpu_check": gpu_check.build_parser()}


def problem(shown: Shown, parsers, targets: set[str], capsys=None) -> str | None:
    """Why the line would fail, or None."""
    if shown.tool == "make":
        names = [t for t in shown.argv if not t.startswith("-") and "=" not in t and not t.startswith("[")]
        unknown = [t for t in names if t not in targets]
        return f"unknown make target(s) {unknown}" if unknown else None
    parser = parsers[shown.tool]
    argv = list(shown.argv)
    if shown.tool == "evalkit" and shown.inline and len(argv) <= 1:
        commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here only
        return None if not argv or argv[0] in commands else f"no command {argv[0]!r}"
    try:
        parser.parse_args(argv)
    except SystemExit as e:
        err = capsys.readouterr().err.strip().splitlines()[-1:] if capsys else []
        return f"exit {e.code}: {err[0] if err else ''}"
    return None


SHOWN = all_shown()


def test_the_docs_show_commands_at_all():
    readme = [s for s in SHOWN if s.where.startswith("README.md:")]
    assert sum(s.tool == "evalkit" for s in readme) >= 6 and any(s.tool == "make" for s in readme)
    assert {"evalkit", "make", "benchmarks.run"} <= {s.tool for s in SHOWN}


@pytest.mark.parametrize("shown", SHOWN, ids=[s.where for s in SHOWN])
def test_every_documented_command_parses(shown, capsys):
    assert problem(shown, _parsers(), make_targets(), capsys) is None, f"{shown.where}: {' '.join(shown.argv)}"


SAMPLE = r"""
Run `evalkit eval --task docvqa --limit 3` or `evalkit score`; `make eval TASK=docvqa ARGS="--limit 2"`.
Not a command: `evalkit.cli.console_main`, `evalkit/` and `make`-free prose.
A wrapped span: `evalkit compare runs/a
runs/b --run-name c`.

```sh
evalkit eval --task docvqa --model hf \
    --model-id X --split-images    # a comment
torchrun --nproc_per_node 8 -m evalkit.cli eval ... --launcher torchrun
export KEY=...
python -m benchmarks.grid --full-size-random
bash benchmarks/gpu_check.sh --wheels /w --dry-run
```

```toml
evalkit = "not a command in a TOML block"
```

```python
print("evalkit eval --nope")
```
"""


def test_extract_finds_exactly_the_command_lines():
    got = [(s.where, s.tool, s.argv, s.inline) for s in extract(SAMPLE, "x.md")]
    assert got == [
        ("x.md:8", "evalkit", ("eval", "--task", "docvqa", "--model", "hf", "--model-id", "X", "--split-images"), False),
        ("x.md:10", "evalkit", ("eval", "--launcher", "torchrun"), False),
        ("x.md:12", "benchmarks.grid", ("--full-size-random",), False),
        ("x.md:13", "gpu_check", ("--dry-run",), False),
        ("x.md:2", "evalkit", ("eval", "--task", "docvqa", "--limit", "3"), True),
        ("x.md:2", "evalkit", ("score",), True),
        ("x.md:2", "make", ("eval", "TASK=docvqa", "ARGS=--limit 2"), True),
        ("x.md:3", "make", (), True),
        ("x.md:4", "evalkit", ("compare", "runs/a", "runs/b", "--run-name", "c"), True),
    ]


def test_a_renamed_flag_or_missing_target_is_caught(capsys):
    parsers, targets = _parsers(), make_targets()
    cases = {
        "`evalkit eval --task docvqa --out-folder runs`": "unrecognized arguments: --out-folder runs",
        "`evalkit invariance --task docvqa --pairs batch --no-such-flag`": "unrecognized arguments: --no-such-flag",
        "`evalkit score --task docvqa`": "the following arguments are required: --predictions",
        "`evalkit evaluate`": "no command 'evaluate'",
        "`evalkit evaluate --task docvqa`": "invalid choice: 'evaluate'",
        "`python -m benchmarks.run --outdir x`": "unrecognized arguments: --outdir x",
        "`make eval-all TASK=docvqa`": "unknown make target(s) ['eval-all']",
    }
    for text, message in cases.items():
        (shown,) = extract(text, "t.md")
        assert message in (problem(shown, parsers, targets, capsys) or ""), text


def test_makefile_targets_are_read():
    assert {"setup", "eval", "audit", "compare", "bench", "bench-grid", "test", "report", "browser",
            "clean"} <= make_targets()


def test_docs_incoming_is_scanned(tmp_path):
    (tmp_path / "docs" / "incoming").mkdir(parents=True)
    (tmp_path / "README.md").write_text("`make test`\n")
    (tmp_path / "docs" / "incoming" / "new.md").write_text("```sh\nevalkit eval --task docvqa\n```\n")
    files = doc_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["README.md", "docs/incoming/new.md"]
    assert [s.argv for s in extract(files[1].read_text(), "n.md")] == [("eval", "--task", "docvqa")]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    heads = [line.lstrip("#").strip() for line in _outside_fences(text) if re.match(r"^#{1,6} ", line)]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def _outside_fences(text: str) -> list[str]:
    out, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            out.append(line)
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links of one page whose file or #anchor does not exist."""
    bad = []
    for line in _outside_fences(path.read_text(encoding="utf-8")):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"^[a-z]+:", target):
                continue  # http(s), mailto
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{target}: no file {dest}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text(encoding="utf-8")):
                bad.append(f"{target}: no heading for #{anchor}")
    return bad


@pytest.mark.parametrize("path", doc_files(), ids=[str(p.relative_to(ROOT)) for p in doc_files()])
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_broken_links_are_found(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n## Two words, here\n[ok](#two-words-here) [self](a.md#top) "
                                   "[gone](b.md) [anchor](a.md#nope) [web](https://x.org/y)\n")
    assert [b.split(":")[0] for b in broken_links(tmp_path / "a.md")] == ["b.md", "a.md#nope"]
