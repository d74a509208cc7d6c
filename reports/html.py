"""Shared pieces for every HTML report: the jinja2 environment, number filters, inline figures,
and writing a page with its Content-Security-Policy.

Reports are single self-contained files: CSS inline, figures as base64 PNG data URIs, no
network. The CSP meta tag makes the browser enforce that (default-src 'none'), and lets
only our own inline scripts run (by hash), so a model output that slipped past escaping
still could not execute.
"""
from __future__ import annotations

import base64
import hashlib
import io
import math
import re
from pathlib import Path
from typing import Any, Iterable

import jinja2
from markupsafe import Markup

from evalkit.resources import shipped_path
from evalkit.results.schema import atomic_write_text

TEMPLATES_DIR = shipped_path("evalkit.reports", "templates")

# Placeholder for a missing number, so an absent value never reads as zero.
MISSING = "—"
# Control characters other than tab / newline / carriage return. Model outputs (random-weight
# models above all) contain them; raw in a page they are invisible, and a NUL makes tools treat
# the whole file as binary.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _control_picture(m: re.Match) -> str:
    c = ord(m.group())
    # U+2400.. are the Unicode "control pictures" (␀ ␁ …), U+2421 is ␡; C1 controls have none.
    return chr(0x2400 + c) if c < 0x20 else "\u2421" if c == 0x7F else "\ufffd"


def visible_controls(value: Any) -> Any:
    """Every {{ }} output passes here before autoescape: control characters in data strings
    become visible symbols. Markup (our own trusted HTML) is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub(_control_picture, value)
    return value


class _CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once per process. Compiling run.html.j2 and its includes took 0.3 s
    of each page (as long as the page's figures), and one command often renders many pages (a
    report over a runs folder, compare, the audit). jinja keys each entry by the template's
    file and checks it against the source's checksum, so an edited template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def make_env(extra_dirs: Iterable[Path] = ()) -> jinja2.Environment:
    """A jinja2 environment over reports/templates (plus `extra_dirs`, searched first).

    Autoescape is on for every template, whatever its file name: all dataset strings and
    model outputs are untrusted. StrictUndefined turns a misspelt variable into an error
    instead of a silently empty cell.
    """
    loader = jinja2.FileSystemLoader([*map(str, extra_dirs), str(TEMPLATES_DIR)])
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, finalize=visible_controls,
                             bytecode_cache=_COMPILED)
    env.filters.update(fmt_num=fmt_num, fmt_bytes=fmt_bytes, fmt_duration=fmt_duration,
                       fmt_int=fmt_int, fmt_value=fmt_value, fmt_ci=fmt_ci)
    return env


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_num(x: Any, digits: int = 1) -> str:
    """Fixed decimals (metric values on the 0-100 scale use 1); missing or NaN -> an em dash."""
    return f"{x:.{digits}f}" if _is_number(x) else MISSING


def fmt_ci(low: Any, high: Any, digits: int = 1) -> str:
    """A 95% interval as 'low–high', or one dash when it is unknown."""
    if not (_is_number(low) and _is_number(high)):
        return MISSING
    return f"{low:.{digits}f}–{high:.{digits}f}"


def fmt_int(x: Any) -> str:
    """Thousands separated integer: 12345 -> '12,345'."""
    return f"{int(round(x)):,}" if _is_number(x) else MISSING


def fmt_bytes(n: Any) -> str:
    """Binary units, one decimal: 1536 -> '1.5 KiB'; under 1 KiB stays in bytes."""
    if not _is_number(n):
        return MISSING
    n = float(n)
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def fmt_duration(seconds: Any) -> str:
    """Wall time a person reads at a glance: '42.3 s', '2 min 05 s', '1 h 02 min 05 s'."""
    if not _is_number(seconds):
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s"


def fmt_value(x: Any) -> str:
    """Any metadata value as text: whole floats as integers, others to 2 decimals, booleans as
    yes/no, lists comma-joined, dicts as 'key value' pairs without the unset ones."""
    if x is None or x == "":
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if not math.isfinite(x):
            return MISSING
        return f"{int(x):,}" if x.is_integer() else f"{x:,.2f}"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, (list, tuple)):
        return ", ".join(fmt_value(v) for v in x) or MISSING
    if isinstance(x, dict):
        return ", ".join(f"{k} {fmt_value(v)}" for k, v in x.items() if v is not None) or MISSING
    return str(x)


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without pyplot's global figure registry."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def fig_to_data_uri(fig, dpi: int = 144) -> str:
    """The figure as a base64 PNG data URI (PNG, not SVG: an SVG carries xmlns URLs)."""
    import matplotlib
    from matplotlib.text import Text

    buf = io.BytesIO()
    # Labels are data (group names, categories): "$5 or $6" must print as written, and a
    # label such as "$\frac{$" must not stop the report, so no text goes through mathtext,
    # neither the texts drawn so far nor those matplotlib makes while drawing.
    with matplotlib.rc_context({"text.parse_math": False, "axes.formatter.use_mathtext": False}):
        for text in fig.findobj(Text):
            text.set_parse_math(False)
        _plain_tick_labels(fig)
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plain_tick_labels(fig) -> None:
    """Tick formatters that write plain numbers ("0.6", offset "1e-4"). With mathtext off (see
    fig_to_data_uri) a formatter's TeX markup ($\\mathdefault{0.6}$, $\\times10^{-4}$) would be
    drawn as written, so the ones that emit it are switched to their plain form."""
    from matplotlib.ticker import LogFormatter, LogFormatterMathtext, ScalarFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for get, set_ in ((axis.get_major_formatter, axis.set_major_formatter),
                              (axis.get_minor_formatter, axis.set_minor_formatter)):
                fmt = get()
                if isinstance(fmt, ScalarFormatter):
                    fmt.set_useMathText(False)
                elif isinstance(fmt, LogFormatterMathtext):
                    set_(LogFormatter(base=fmt._base, labelOnlyBase=fmt.labelOnlyBase))


def shorten(label: str, max_chars: int) -> str:
    """A figure label cut to max_chars with an ellipsis, so long names do not squeeze the plot
    (nor take minutes to lay out), and a lone surrogate, which the font code cannot take,
    shown as its escape (\\ud800)."""
    label = str(label)
    label = label if len(label) <= max_chars else label[: max_chars - 1] + "…"
    return label.encode("utf-8", "backslashreplace").decode("utf-8")


# Only inline images may become an <img src>: anything else would be a network or file fetch.
_DATA_URI = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]+$")


def inline_image(value: Any) -> str | None:
    """value if it is an inline base64 image (a data: URI), else None."""
    return value if isinstance(value, str) and _DATA_URI.match(value) else None


def load_script(name: str) -> str:
    """An inline script shipped in reports/templates (e.g. 'table_filter.js')."""
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")


def csp(scripts: Iterable[str] = ()) -> str:
    """Content-Security-Policy for a self-contained page: nothing from the network, images
    only as data URIs, and only the listed inline scripts (by SHA-256 of their exact text)."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii") + "'"
                      for s in scripts)
    script_src = hashes or "'none'"
    return ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src {script_src}; base-uri 'none'; form-action 'none'")


def render_page(env: jinja2.Environment, template: str, out_path: Path,
                scripts: Iterable[str] = (), **context: Any) -> Path:
    """Render `template` (which extends base.html.j2) to `out_path`, atomically.

    `scripts` are inline script texts: base.html.j2 emits each verbatim at the end of the
    body and the CSP admits exactly those.
    """
    scripts = list(scripts)
    html = env.get_template(template).render(scripts=scripts, csp=csp(scripts), **context)
    return atomic_write_text(out_path, html)
