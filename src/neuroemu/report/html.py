"""Self-contained HTML reports: PNG figures embedded as base64 data URIs, tables as HTML tables.

A report is a title and a list of sections; each section has a heading, text (plain text, or HTML
when it starts with ``<``), figures (matplotlib Figures or PNG paths, optionally with a caption) and
tables (lists of row dicts, optionally with a caption). The page loads nothing from outside.
"""
from __future__ import annotations

import base64
import html as _html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroemu.errors import ConfigError

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0;
       background: #fafafa; line-height: 1.45; }
main { max-width: 1150px; margin: 0 auto; padding: 1.5em 2em 3em; background: #fff; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
figure { margin: 1.2em 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; margin-top: .3em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
caption { text-align: left; font-weight: bold; padding-bottom: .3em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; }
td.text { text-align: left; }
nav ul { columns: 2; font-size: .95em; }
footer { margin-top: 3em; font-size: .8em; color: #777; }
"""


@dataclass
class Section:
    """One report section: heading, text (plain or HTML), figures and tables."""

    heading: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)


def _as_section(item: Any, i: int) -> Section:
    if isinstance(item, Section):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - {"heading", "text", "figures", "tables"}
        if unknown:
            raise ConfigError(f"report section {i}: unknown key(s) {sorted(unknown)}")
        return Section(item.get("heading", ""), item.get("text", "") or "", list(item.get("figures") or []),
                       list(item.get("tables") or []))
    if isinstance(item, (tuple, list)) and 1 <= len(item) <= 4:
        heading, text, figs, tables = (list(item) + ["", [], []])[:4]
        return Section(str(heading), text or "", list(figs or []), list(tables or []))
    raise ConfigError(f"report section {i}: expected (heading, text, figures[, tables]), a dict or a Section, "
                      f"got {type(item).__name__}")


def figure_png(fig, dpi: int = 110) -> bytes:
    """Render a matplotlib Figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _png_bytes(item: Any) -> bytes:
    if hasattr(item, "savefig"):
        return figure_png(item)
    path = Path(item)
    if not path.is_file():
        raise ConfigError(f"report figure '{path}' does not exist")
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ConfigError(f"report figure '{path}' is not a PNG file")
    return data


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v: Any) -> tuple[str, bool]:
    """Cell text and whether it is text (left-aligned) rather than a number."""
    if v is None:
        return "", False
    if isinstance(v, bool):
        return str(v), True
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v), False
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a", False
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}", False
        return f"{v:.4g}", False
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return _fmt(v.item())
        except (TypeError, ValueError):
            pass
    return str(v), True


def table_html(rows: Sequence[Mapping[str, Any]], caption: str | None = None) -> str:
    """HTML table of row dicts (columns: the union of keys, in first-seen order)."""
    rows = list(rows)
    cols: list[str] = []
    for r in rows:
        if not isinstance(r, Mapping):
            raise ConfigError(f"report table rows must be dicts, got {type(r).__name__}")
        cols.extend(k for k in r if k not in cols)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_html.escape(str(c))}</th>" for c in cols) + "</tr>")
    for r in rows:
        cells = []
        for c in cols:
            txt, is_text = _fmt(r.get(c))
            cls = ' class="text"' if is_text else ""
            cells.append(f"<td{cls}>{_html.escape(txt)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _text_html(text: str) -> str:
    text = text or ""
    if text.lstrip().startswith("<"):
        return text
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n".join(f"<p>{_html.escape(p)}</p>" for p in paras)


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "section"


def build_html(title: str, sections: Sequence, subtitle: str | None = None, footer: str | None = None) -> str:
    """Return a self-contained HTML page.

    ``sections`` items are :class:`Section`, dicts with the same keys, or tuples
    ``(heading, text, figures[, tables])``. ``text`` is HTML when it starts with ``<``, otherwise plain
    text (blank lines separate paragraphs). A figure is a matplotlib Figure or a PNG path, or a
    ``(figure, caption)`` pair; a table is a list of row dicts or a ``(caption, rows)`` pair.
    """
    secs = [_as_section(s, i) for i, s in enumerate(sections)]
    body = [f"<h1>{_html.escape(title)}</h1>"]
    if subtitle:
        body.append(f"<p>{_html.escape(subtitle)}</p>")
    if len(secs) > 2:
        body.append("<nav><ul>" + "".join(f'<li><a href="#{_slug(s.heading)}-{i}">{_html.escape(s.heading)}</a></li>'
                                          for i, s in enumerate(secs)) + "</ul></nav>")
    for i, s in enumerate(secs):
        body.append(f'<section id="{_slug(s.heading)}-{i}">')
        body.append(f"<h2>{_html.escape(s.heading)}</h2>")
        body.append(_text_html(s.text))
        for t in s.tables:
            if isinstance(t, tuple) and len(t) == 2 and isinstance(t[0], str):
                body.append(table_html(t[1], t[0]))
            else:
                body.append(table_html(t))
        for f in s.figures:
            fig, caption = (f if isinstance(f, tuple) and len(f) == 2 else (f, None))
            label = fig.get_label() if hasattr(fig, "get_label") else Path(str(fig)).stem
            alt = caption or (f"{s.heading}: {label.replace('_', ' ')}" if label else s.heading)
            body.append(f'<figure><img alt="{_html.escape(alt, quote=True)}" src="{data_uri(_png_bytes(fig))}">'
                        + (f"<figcaption>{_html.escape(caption)}</figcaption>" if caption else "") + "</figure>")
        body.append("</section>")
    if footer:
        body.append(f"<footer>{_html.escape(footer)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body><main>\n"
            + "\n".join(body) + "\n</main></body>\n</html>\n")


def write_report(out_dir: str | Path, title: str, sections: Sequence, subtitle: str | None = None,
                 footer: str | None = None, save_pngs: bool = True, dpi: int = 110) -> Path:
    """Write ``out_dir/index.html`` (self-contained) and, with ``save_pngs``, each Figure as a PNG beside it.

    Figure objects are saved as ``NN_<figure label or section>.png``; the HTML embeds the same PNGs.
    Returns the path of ``index.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    secs = [_as_section(s, i) for i, s in enumerate(sections)]
    n = 0
    saved = []
    for s in secs:
        figs = []
        for f in s.figures:
            fig, caption = (f if isinstance(f, tuple) and len(f) == 2 else (f, None))
            if hasattr(fig, "savefig") and save_pngs:
                n += 1
                name = fig.get_label() if hasattr(fig, "get_label") and fig.get_label() else s.heading
                path = out / f"{n:02d}_{_slug(name)}.png"
                path.write_bytes(figure_png(fig, dpi))
                fig = path
            figs.append((fig, caption) if caption else fig)
        saved.append(Section(s.heading, s.text, figs, list(s.tables)))
    index = out / "index.html"
    index.write_text(build_html(title, saved, subtitle, footer), encoding="utf-8")
    return index
