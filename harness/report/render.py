"""The Jinja2 templates in ``templates/`` (Markdown and HTML) and their filters: table rows,
inline `code` and **bold** as HTML, anchors, and the CSS class of a verdict cell."""

from __future__ import annotations

import html
import re
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

VERDICT_CLASS = {
    "confirmed": "ok",
    "refuted": "bad",
    "unknown": "unk",
    "regression": "bad",
    "improvement": "ok",
}


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _inline(text: str) -> Markup:
    """HTML of text with inline `code` and **bold**; everything else escaped."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return Markup(re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text))


def _wbr(markup: Markup) -> Markup:
    """A line-break opportunity after each underscore (long figure names in table headers);
    the HTML of :func:`_inline` has underscores in text only, never in a tag."""
    return Markup(str(markup).replace("_", "_<wbr>"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _verdict_class(cell: str) -> str:
    """The CSS class of a table cell that starts with a verdict ("" for any other)."""
    return VERDICT_CLASS.get(cell.split(" ")[0].strip("*").lower(), "")


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md_row=_md_row, inline=_inline, slug=_slug, verdict_class=_verdict_class,
                       wbr=_wbr)  # fmt: skip
    return env


def render(template: str, **context: Any) -> str:
    """A template rendered, ending in exactly one newline."""
    return _templates().get_template(template).render(**context).rstrip("\n") + "\n"
