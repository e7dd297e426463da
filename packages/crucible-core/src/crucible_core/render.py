"""Views of results: plain text, escaped HTML, templates, and the mixin results use.

Every user-facing result in crucible describes itself once as a [`View`][crucible_core.render.View]
and inherits [`RenderMixin`][crucible_core.render.RenderMixin] for `render()`, `_repr_html_`, a short
`repr`, `to_markdown()`, `to_latex()`, `to_html()`, `to_dict()` and `to_polars()`.
"""

from __future__ import annotations

from crucible_core._config import DisplayOptions, config, display_options
from crucible_core._escape import html_escape, latex_escape, markdown_escape
from crucible_core._render import (
    RenderMixin,
    Table,
    View,
    format_value,
    jinja_environment,
    render_html,
    render_latex,
    render_markdown,
    render_text,
    repr_without_defaults,
)

__all__ = (
    # views
    "RenderMixin",
    "Table",
    "View",
    "render_html",
    "render_latex",
    "render_markdown",
    "render_text",
    "format_value",
    "repr_without_defaults",
    # escaping and templates
    "html_escape",
    "latex_escape",
    "markdown_escape",
    "jinja_environment",
    # options
    "DisplayOptions",
    "config",
    "display_options",
)
