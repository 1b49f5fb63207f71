"""Batch reports: JSON (one record per file) and a self-contained HTML page with plots.

The HTML page needs nothing but a browser: styles inline, plots drawn as
inline SVG by this module (no matplotlib, no JavaScript library, no network).
Three plots: saving per file, achieved quality against the target, and bytes
against quality; then the summary table and one row per file.

Example
-------
>>> import os, tempfile
>>> recs = [{"source": "a.jpg", "status": "written", "bytes_before": 1000, "bytes_after": 700,
...          "saving": 0.3, "quality": {"ssimulacra2": 81.0}, "target": "ssimulacra2:80", "target_met": True}]
>>> p = os.path.join(tempfile.mkdtemp(), "r.html")
>>> write_html(p, recs, {"files": 1})
>>> "<svg" in open(p).read()
True
"""

from __future__ import annotations

import html
import json
import math
import os
from typing import Any, Sequence

from .io import atomic_write

__all__ = ["write_json", "write_html", "render_html", "svg_bars", "svg_scatter"]


def _clean(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def write_json(path: str, files: Sequence[dict[str, Any]], summary: dict[str, Any], *,
               options: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
    """Write the JSON report atomically: ``{"precodec", "options", "summary", "files": [...]}``."""
    from ._version import __version__
    from .record import _json_default

    doc = {"precodec": __version__, "options": options or {}, "summary": summary,
           "files": [_clean(f) for f in files], **(extra or {})}
    atomic_write(path, (json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


# --------------------------------------------------------------------------- SVG plots

_W, _H = 640, 300
_M = {"l": 64, "r": 16, "t": 28, "b": 46}
_PALETTE = {"ok": "#2b7bba", "miss": "#d95f02", "neutral": "#888888", "plain": "#7570b3", "grid": "#e3e3e3"}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 2.5, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _short(name: str, n: int = 12) -> str:
    """An axis label: the name, or its start and an ellipsis when longer than ``n``."""
    return name if len(name) <= n else name[: n - 1] + "\u2026"


def _fmt(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _frame(title: str, xlabel: str, ylabel: str, xt: list[tuple[float, str]], yt: list[tuple[float, str]],
           body: str, plot_id: str) -> str:
    l, r, t, b = _M["l"], _W - _M["r"], _M["t"], _H - _M["b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="{plot_id}" viewBox="0 0 {_W} {_H}" '
             f'width="{_W}" height="{_H}" role="img" aria-label="{html.escape(title)}">',
             f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
             f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for y, lab in yt:
        parts.append(f'<line x1="{l}" x2="{r}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_PALETTE["grid"]}"/>')
        parts.append(f'<text x="{l - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{html.escape(lab)}</text>')
    for x, lab in xt:
        parts.append(f'<text x="{x:.1f}" y="{b + 16}" text-anchor="middle" font-size="11">{html.escape(lab)}</text>')
    parts.append(f'<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="#333"/>')
    parts.append(f'<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="#333"/>')
    parts.append(f'<text x="{(l + r) / 2}" y="{_H - 8}" text-anchor="middle" font-size="12">{html.escape(xlabel)}</text>')
    parts.append(f'<text x="14" y="{(t + b) / 2}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 14 {(t + b) / 2})">{html.escape(ylabel)}</text>')
    parts.append(body)
    parts.append("</svg>")
    return "\n".join(parts)


def svg_bars(labels: Sequence[str], values: Sequence[float], *, title: str, ylabel: str, colors: Sequence[str],
             plot_id: str = "bars", percent: bool = True) -> str:
    """A vertical bar chart (one bar per file) as an SVG string."""
    l, r, t, b = _M["l"], _W - _M["r"], _M["t"], _H - _M["b"]
    vals = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    if hi == lo:
        hi = lo + (0.1 if percent else 1.0)
    ticks = _ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    sy = lambda v: b - (v - lo) / (hi - lo) * (b - t)  # noqa: E731
    n = max(1, len(vals))
    bw = (r - l) / n
    body = []
    for i, (lab, v) in enumerate(zip(labels, vals)):
        y0, y1 = sy(0.0), sy(v)
        body.append(f'<rect class="bar" x="{l + i * bw + bw * 0.1:.1f}" y="{min(y0, y1):.1f}" width="{bw * 0.8:.1f}" '
                    f'height="{max(abs(y1 - y0), 0.5):.1f}" fill="{colors[i]}"><title>{html.escape(lab)}: '
                    f'{v:.1%}</title></rect>' if percent else
                    f'<rect class="bar" x="{l + i * bw + bw * 0.1:.1f}" y="{min(y0, y1):.1f}" width="{bw * 0.8:.1f}" '
                    f'height="{max(abs(y1 - y0), 0.5):.1f}" fill="{colors[i]}"><title>{html.escape(lab)}: {v:g}</title></rect>')
    xt = []
    if n <= 30:
        xt = [(l + (i + 0.5) * bw, _short(os.path.basename(lab))) for i, lab in enumerate(labels)]
    yt = [(sy(v), f"{v:.0%}" if percent else _fmt(v)) for v in ticks]
    return _frame(title, "file" + ("" if n <= 30 else f" ({n} files)"), ylabel, xt, yt, "\n".join(body), plot_id)


def svg_scatter(xs: Sequence[float], ys: Sequence[float], *, title: str, xlabel: str, ylabel: str,
                colors: Sequence[str], labels: Sequence[str], hline: float | None = None, plot_id: str = "scatter",
                diagonal: bool = False, extra: Sequence[tuple[float, float, str, str]] = (),
                integer_x: bool = False) -> str:
    """A scatter plot as an SVG string; ``hline`` draws a dashed target line, ``extra`` adds (x, y, color, label) points."""
    l, r, t, b = _M["l"], _W - _M["r"], _M["t"], _H - _M["b"]
    allx = [x for x in xs if math.isfinite(x)] + [e[0] for e in extra]
    ally = [y for y in ys if math.isfinite(y)] + [e[1] for e in extra] + ([hline] if hline is not None else [])
    if not allx:
        allx, ally = [0.0, 1.0], [0.0, 1.0]
    x0, x1 = min(allx), max(allx)
    y0, y1 = min(ally), max(ally)
    padx = (x1 - x0) * 0.05 or 1.0
    pady = (y1 - y0) * 0.08 or 1.0
    x0, x1, y0, y1 = x0 - padx, x1 + padx, y0 - pady, y1 + pady
    sx = lambda v: l + (v - x0) / (x1 - x0) * (r - l)  # noqa: E731
    sy = lambda v: b - (v - y0) / (y1 - y0) * (b - t)  # noqa: E731
    body = []
    if hline is not None:
        body.append(f'<line class="target" x1="{l}" x2="{r}" y1="{sy(hline):.1f}" y2="{sy(hline):.1f}" '
                    f'stroke="#d62728" stroke-dasharray="6 4"/>')
        body.append(f'<text x="{r - 4}" y="{sy(hline) - 4:.1f}" text-anchor="end" font-size="11" fill="#d62728">'
                    f'target {hline:g}</text>')
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        if hi > lo:
            body.append(f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" '
                        f'stroke="#999" stroke-dasharray="3 3"/>')
    for x, y, c, lab in zip(xs, ys, colors, labels):
        if math.isfinite(x) and math.isfinite(y):
            body.append(f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4.5" fill="{c}" fill-opacity="0.85">'
                        f'<title>{html.escape(lab)}: {x:g}, {y:.2f}</title></circle>')
    for x, y, c, lab in extra:
        body.append(f'<rect class="point plain" x="{sx(x) - 4:.1f}" y="{sy(y) - 4:.1f}" width="8" height="8" fill="{c}" '
                    f'fill-opacity="0.7"><title>{html.escape(lab)}: {x:g}, {y:.2f}</title></rect>')
    xt = [(sx(v), _fmt(v)) for v in _ticks(x0, x1) if not integer_x or float(v).is_integer()]
    yt = [(sy(v), _fmt(v)) for v in _ticks(y0, y1)]
    return _frame(title, xlabel, ylabel, xt, yt, "\n".join(body), plot_id)


# --------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin-bottom:4px} .sub{color:#666;margin-top:0}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plots svg{border:1px solid #ddd;border-radius:4px;max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:12px 0} td,th{border:1px solid #ddd;padding:3px 8px}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde0dc} tr.miss td{background:#fff3e0} .legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
"""

# A tiny self-check, no library: marks the page with how many plots rendered with a size.
_JS = """
(function(){var n=0;document.querySelectorAll('svg.plot').forEach(function(s){var b=s.getBoundingClientRect();
var marks=s.querySelectorAll('.bar,.point').length;if(b.width>0&&b.height>0&&marks>0){n++;}});
document.body.setAttribute('data-plots-rendered',String(n));})();
"""


def _metric_of(target: str | None) -> tuple[str | None, float | None]:
    if not target:
        return None, None
    m, _, v = str(target).partition(":")
    try:
        return m, float(v)
    except ValueError:
        return m, None


def render_html(files: Sequence[dict[str, Any]], summary: dict[str, Any], *, title: str = "precodec report",
                options: dict[str, Any] | None = None) -> str:
    """Return the HTML page as a string (see :func:`write_html`)."""
    from ._version import __version__

    options = options or {}
    target = options.get("target") or next((f.get("target") for f in files if f.get("target")), None)
    metric, tval = _metric_of(target)
    done = [f for f in files if f.get("bytes_after") is not None and f.get("status") != "skipped"]
    labels = [str(f["source"]) for f in done]
    colors = [(_PALETTE["miss"] if f.get("target_met") is False else _PALETTE["ok"]) for f in done]
    plots = []
    plots.append(svg_bars(labels, [f.get("saving") or 0.0 for f in done], title="Saving per file",
                          ylabel="saving (1 - after/before)", colors=colors, plot_id="plot-saving"))
    qs = [float((f.get("quality") or {}).get(metric, float("nan"))) if metric else float("nan") for f in done]
    plots.append(svg_scatter(list(range(1, len(done) + 1)), qs, title=f"Achieved {metric or 'quality'} against the target",
                             xlabel="file #", ylabel=metric or "quality", colors=colors, labels=labels, hline=tval,
                             plot_id="plot-quality", integer_x=True))
    extra = []
    for f in done:
        p = f.get("plain")
        if p and metric in (p.get("quality") or {}):
            extra.append((float(p["bytes"]), float(p["quality"][metric]), _PALETTE["plain"], f"{f['source']} (plain)"))
    plots.append(svg_scatter([float(f["bytes_after"]) for f in done], qs, title="Bytes against quality",
                             xlabel="bytes after", ylabel=metric or "quality", colors=colors, labels=labels,
                             hline=tval, plot_id="plot-bytes", extra=extra))
    esc = html.escape
    srows = "".join(f"<tr><th>{esc(str(k))}</th><td class='n'>{esc(_cell(k, v))}</td></tr>" for k, v in summary.items())
    frows = []
    for f in files:
        cls = "failed" if f.get("status") == "failed" else ("miss" if f.get("target_met") is False else "")
        q = (f.get("quality") or {}).get(metric) if metric else None
        frows.append(
            f"<tr class='{cls}'><td>{esc(str(f.get('source')))}</td><td>{esc(str(f.get('status')))}</td>"
            f"<td>{esc(str(f.get('format') or ''))}</td><td class='n'>{f.get('bytes_before') or ''}</td>"
            f"<td class='n'>{f.get('bytes_after') if f.get('bytes_after') is not None else ''}</td>"
            f"<td class='n'>{'' if f.get('saving') is None else format(f['saving'], '.1%')}</td>"
            f"<td class='n'>{'' if q is None else format(q, '.2f')}</td>"
            f"<td>{esc(json.dumps(f.get('params') or {}, sort_keys=True))}</td><td>{esc(str(f.get('reason') or ''))}</td></tr>")
    legend = (f"<p class='legend'><span><i class='sw' style='background:{_PALETTE['ok']}'></i>target met</span>"
              f"<span><i class='sw' style='background:{_PALETTE['miss']}'></i>target missed</span>"
              + (f"<span><i class='sw' style='background:{_PALETTE['plain']}'></i>plain encoder</span>" if extra else "")
              + "</p>")
    opts = esc(", ".join(f"{k}={v}" for k, v in options.items() if v not in (None, False, "")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="sub">precodec {esc(__version__)} &middot; {len(files)} files &middot; {opts}</p>
{legend}
<div class="plots">
{''.join(plots)}
</div>
<h2>Summary</h2>
<table id="summary">{srows}</table>
<h2>Files</h2>
<table id="files"><tr><th>source</th><th>status</th><th>format</th><th>bytes before</th><th>bytes after</th>
<th>saving</th><th>{esc(metric or 'quality')}</th><th>params</th><th>reason</th></tr>
{''.join(frows)}
</table>
<script>{_JS}</script>
</body></html>
"""


def _cell(k: str, v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1%}" if "saving" in k else f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_html(path: str, files: Sequence[dict[str, Any]], summary: dict[str, Any], *,
               title: str = "precodec report", options: dict[str, Any] | None = None) -> None:
    """Write the self-contained HTML report atomically (inline CSS and SVG plots; nothing fetched)."""
    atomic_write(path, render_html(files, summary, title=title, options=options).encode("utf-8"))
