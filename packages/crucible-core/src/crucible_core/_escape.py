"""Escaping user text for the formats reports are written in."""

from __future__ import annotations

import html
import re

__all__ = ("html_escape", "latex_escape", "markdown_escape")

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX))
# Characters that start Markdown syntax anywhere in a line: code, emphasis, links and images, headings,
# table cells, raw HTML, strikethrough, and `$` (math on GitHub). Digits, '.', '-' and parentheses are left alone so that numbers
# stay readable; they only matter at the start of a line, which a table cell never is.
_MD_RE = re.compile(r"([\\`*_\[\]#|<>~$])")


def html_escape(text: object) -> str:
    """Escape text for HTML element content and quoted attributes."""
    return html.escape(str(text), quote=True)


def latex_escape(text: object) -> str:
    """Escape text so LaTeX prints it literally (no command, math or comment can be injected)."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    return _LATEX_RE.sub(lambda m: _LATEX[m.group(0)], s)


def markdown_escape(text: object) -> str:
    """Escape text for a Markdown table cell or paragraph (no links, emphasis, HTML or new rows)."""
    s = str(text).replace("\r", " ").replace("\n", " ")
    return _MD_RE.sub(r"\\\1", s)
