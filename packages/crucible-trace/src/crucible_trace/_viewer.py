"""The self-contained interactive HTML viewer of a chain."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import webbrowser
from importlib import resources
from pathlib import Path

from crucible_core.export import atomic_write
from crucible_core.render import jinja_environment
from crucible_core.serde import converter, dumps
from crucible_trace._model import Chain
from crucible_trace._ops import statistics
from crucible_trace._parser import ParseResult, ParseWarning
from crucible_trace._version import __version__

__all__ = ("open_visualization", "to_html")

# JSON is safe inside <script type="application/json"> once nothing in it can end the element or
# start a comment, and JavaScript's line separators are escaped too.
_JSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _script_json(chain: Chain) -> str:
    text = dumps(converter.unstructure(chain)).decode()
    for (
        raw,
        escaped,
    ) in _JSON_ESCAPES:  # str.replace is far faster than str.translate here
        text = text.replace(raw, escaped)
    return text


def _script() -> tuple[str, str]:
    text = (
        resources.files("crucible_trace")
        .joinpath("templates", "viewer.js")
        .read_text(encoding="utf-8")
    )
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return text, f"sha256-{digest}"


def _split(source: Chain | ParseResult) -> tuple[Chain, tuple[ParseWarning, ...]]:
    if isinstance(source, ParseResult):
        return source.chain, source.warnings
    return source, ()


def to_html(source: Chain | ParseResult) -> str:
    """A self-contained HTML page to explore a chain, or a parse result with its warnings.

    It shows a timeline of the events with their alternatives and reasoning, a chart of confidence
    over the chain (axes labelled: confidence 0 to 1 against the event's position), a search box
    and filters by type and confidence. Given a [`ParseResult`][crucible_trace.ParseResult], it
    also lists the parse warnings (line, column, message and the text they point at), so what the
    parser could not read is in front of the reader, not hidden.

    It makes no network request: its content security policy allows only its own inline script
    (by hash), and the chain travels as escaped JSON that the script reads with `JSON.parse` and
    shows as text, so no decision or reasoning can run as script or markup. Needs the `jinja2`
    extra (`pip install "crucible-trace[jinja2]"`).
    """
    env = jinja_environment("crucible_trace", "templates")  # needs the jinja2 extra
    from markupsafe import Markup  # installed with jinja2

    chain, warnings = _split(source)
    script, script_hash = _script()
    template = env.get_template("viewer.html")
    return template.render(
        chain=chain,
        warnings=warnings,
        stats=statistics(chain),
        version=__version__,
        data=Markup(_script_json(chain)),  # escaped above for a script element
        script=Markup(script),  # our own file, allowed by its hash
        script_hash=script_hash,
    )


def open_visualization(
    chain: Chain | ParseResult,
    *,
    path: str | os.PathLike[str] | None = None,
    open_browser: bool = True,
) -> Path:
    """Write the HTML viewer and open it in a web browser, where one exists.

    Args:
        chain: the chain to show, or a parse result (its warnings are shown too).
        path: where to write the page; a new temporary directory by default.
        open_browser: `False` only writes the page (e.g. on a server).

    Returns:
        The path of the page, to open by hand when no browser was found.
    """
    target = (
        Path(path)
        if path is not None
        else Path(tempfile.mkdtemp(prefix="crucible-trace-"))
        / f"{_split(chain)[0].id}.html"
    )
    html = to_html(chain)
    with atomic_write(target) as fh:
        fh.write(html)
    if open_browser:
        webbrowser.open(
            target.resolve().as_uri()
        )  # returns False when there is no browser
    return target
