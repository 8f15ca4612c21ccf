"""What every self-contained HTML page of the tool shares: its head, CSS, badges and figures.

The run report (``report.html``), ``compare.html`` and ``trend.html`` are built from these
pieces so that they look alike and keep the same promise: nothing on a page reaches the network.
CSS is inline, figures are PNG ``data:`` URIs, there is no script, font or link, and the page's
Content-Security-Policy makes the browser refuse any fetch. Every string that comes from a run
goes through :func:`escape`: run names, paths, labels and notes are user input.

No matplotlib here: :func:`figure_png` takes a figure someone else built, so a CLI that writes
only Markdown or JSON never pays for importing it.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The browser itself forbids any fetch: a resource that is not inline fails to load, visibly,
#: instead of leaking the report's existence (or a target URL) to a third party.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:960px;padding:16px 24px;color:#212121;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f4f4f4;
padding:0 3px;border-radius:3px}
.verdict{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:600;color:#fff}
.pass{background:#2e7d32}.fail{background:#c62828}.inconclusive{background:#ef6c00}
.banner{padding:8px 12px;margin:8px 0;border-radius:4px;border-left:6px solid}
.banner.interrupted,.banner.saturated{background:#fff3e0;border-color:#ef6c00}
.banner.incomplete,.banner.stopped{background:#ffebee;border-color:#c62828}
.note{color:#555}figure{margin:12px 0}figure img{max-width:100%;height:auto}
figcaption{color:#555;font-size:12px}details{margin:6px 0}
.neutral{background:#757575}.banner.caution{background:#fff3e0;border-color:#ef6c00}
"""

#: Badge colours :data:`CSS` defines: green, red, orange, grey (a comparison's "unchanged").
BADGE_KINDS: tuple[str, ...] = ("pass", "fail", "inconclusive", "neutral")

#: Resolution of every figure's PNG.
DPI = 100


def escape(value: Any) -> str:
    """``value`` as text safe in HTML content and in a quoted attribute."""
    return html.escape(str(value), quote=True)


def badge(label: str, kind: str | None = None) -> str:
    """A coloured verdict badge reading ``LABEL``.

    Args:
        label: the verdict as the data has it (shown upper-case).
        kind: its colour, one of :data:`BADGE_KINDS`; default: ``label`` itself. Anything else
            is ``inconclusive`` (orange): an unknown verdict is never shown as a pass.
    """
    colour = label if kind is None else kind
    colour = colour if colour in BADGE_KINDS else "inconclusive"
    return f'<span class="verdict {colour}">{escape(label.upper())}</span>'


def head(title: str) -> list[str]:
    """The page up to and including ``<body>``: charset, viewport, the CSP, title, CSS.

    Args:
        title: plain text (escaped here).
    """
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]


def figure_tag(key: str, title: str, png: bytes, caption: str = "") -> str:
    """A ``<figure>`` holding ``png`` inline as a ``data:`` URI; ``title`` is its alt text."""
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure id="{escape(key)}"><img alt="{escape(title)}" '
        f'src="data:image/png;base64,{data}">{caption_html}</figure>'
    )


def figure_png(figure: Figure) -> bytes:
    """A matplotlib figure as PNG bytes, rendered by Agg (``Figure`` directly, no pyplot).

    No Software/date metadata: the same data renders to the same bytes.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
