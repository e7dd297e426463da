"""The self-contained interactive HTML viewer of a chain."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import webbrowser
from importlib import resources
from importlib.metadata import version
from pathlib import Path

from crucible_core.export import atomic_write
from crucible_core.render import jinja_environment
from crucible_core.serde import converter, dumps
from crucible_trace._model import Chain
from crucible_trace._ops import statistics

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


def to_html(chain: Chain) -> str:
    """A self-contained HTML page to explore the chain.

    It shows a timeline of the events with their alternatives and reasoning, a chart of confidence
    over the chain, and a search box and filters by type and confidence.

    It makes no network request: its content security policy allows only its own inline script
    (by hash), and the chain travels as escaped JSON that the script reads with `JSON.parse` and
    shows as text, so no decision or reasoning can run as script or markup. Needs the `jinja2`
    extra (`pip install "crucible-trace[jinja2]"`).
    """
    env = jinja_environment("crucible_trace", "templates")  # needs the jinja2 extra
    from markupsafe import Markup  # installed with jinja2

    script, script_hash = _script()
    template = env.get_template("viewer.html")
    return template.render(
        chain=chain,
        stats=statistics(chain),
        version=version("crucible-trace"),
        data=Markup(_script_json(chain)),  # escaped above for a script element
        script=Markup(script),  # our own file, allowed by its hash
        script_hash=script_hash,
    )


def open_visualization(
    chain: Chain,
    *,
    path: str | os.PathLike[str] | None = None,
    open_browser: bool = True,
) -> Path:
    """Write the HTML viewer and open it in a web browser, where one exists.

    Args:
        chain: the chain to show.
        path: where to write the page; a new temporary directory by default.
        open_browser: `False` only writes the page (e.g. on a server).

    Returns:
        The path of the page, to open by hand when no browser was found.
    """
    target = (
        Path(path)
        if path is not None
        else Path(tempfile.mkdtemp(prefix="crucible-trace-")) / f"{chain.id}.html"
    )
    html = to_html(chain)
    with atomic_write(target) as fh:
        fh.write(html)
    if open_browser:
        webbrowser.open(
            target.resolve().as_uri()
        )  # returns False when there is no browser
    return target
