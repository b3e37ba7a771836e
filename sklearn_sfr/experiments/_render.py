"""Turn a report's content into Markdown and HTML, from the jinja2 templates in ``templates/``.

A report is a :class:`Page`: a title and blocks added in reading order (headings, paragraphs,
notes, bullet lists, tables, figures). Its text is written in a small Markdown subset
(``**bold**``, ```code```, links): the Markdown template writes it as it is, and the HTML
template turns it into HTML with markdown-it-py, raw HTML in the text escaped (never passed
through). The SFR study's report and the Scene study's report are both Pages, so both go
through these two templates; no report assembles its pages from strings.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

#: The kinds of block a Page holds, in the templates' terms.
BLOCK_KINDS = ("heading", "text", "note", "bullets", "table", "figure")


class Page:
    """A report's content, to be rendered as Markdown (:meth:`markdown`) or HTML (:meth:`html`).

    Text (paragraphs, notes, list items) is Markdown: ``**bold**``, ```code``` and
    ``[links](url)``; headings, table cells and captions are plain text.

    Parameters
    ----------
    title : str
        The page's title (its first heading).

    Attributes
    ----------
    blocks : list of (str, object)
        ``(kind, value)`` pairs in reading order, ``kind`` one of :data:`BLOCK_KINDS`.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.experiments._render import Page
    >>> page = Page("Results")
    >>> page.text("The **best** model is `tree`.")
    >>> page.table(pd.DataFrame({"model": ["tree"], "rmse": [0.41234]}))
    >>> print(page.markdown())
    # Results
    <BLANKLINE>
    The **best** model is `tree`.
    <BLANKLINE>
    | model | rmse |
    |---|---|
    | tree | 0.412 |
    <BLANKLINE>
    >>> "<p>The <b>best</b> model is <code>tree</code>.</p>" in page.html()
    True
    """

    def __init__(self, title):
        self.title = str(title)
        self.blocks = []

    def heading(self, text):
        """A section heading (plain text)."""
        self.blocks.append(("heading", str(text)))

    def text(self, text):
        """A paragraph (Markdown)."""
        self.blocks.append(("text", str(text)))

    def note(self, text):
        """A paragraph set apart from the text around it, e.g. a warning (Markdown)."""
        self.blocks.append(("note", str(text)))

    def bullets(self, items):
        """A bullet list (each item Markdown); an empty list adds nothing."""
        items = [str(item) for item in items]
        if items:
            self.blocks.append(("bullets", items))

    def table(self, frame):
        """A DataFrame as a table: floats to 3 decimals (times and memory to 1), missing
        values as a dash, the same cells in Markdown and HTML."""
        self.blocks.append(("table", _table_view(frame)))

    def figure(self, path, caption):
        """An image beside the report (only its file name is linked) with its caption."""
        self.blocks.append(("figure", {"src": Path(path).name, "caption": str(caption)}))

    def markdown(self):
        """The page as Markdown (str)."""
        return render_markdown(self)

    def html(self):
        """The page as a standalone HTML document (str)."""
        return render_html(self)


# -- tables --------------------------------------------------------------------------------------
def _digits(column):
    """Decimals of a column: times (``*_time``) and memory (``*_mb``) to 0.1, the rest 0.001."""
    return 1 if str(column).endswith(("_time", "_mb")) else 3


def _cell(value, digits):
    if pd.isna(value):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def _table_view(frame):
    """A DataFrame as the templates take it: column names and rows of cell strings."""
    columns = [str(c) for c in frame.columns]
    digits = [_digits(c) for c in frame.columns]
    rows = [
        [_cell(value, d) for value, d in zip(row, digits)] for row in frame.itertuples(index=False)
    ]
    return {"columns": columns, "rows": rows}


def markdown_table(frame):
    """A DataFrame as a Markdown table: floats to a fixed 3 decimals (times and memory to 1),
    missing values as a dash (the templates' own table, for text built outside a Page).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.experiments._render import markdown_table
    >>> print(markdown_table(pd.DataFrame({"model": ["a|b"], "fit_time": [1.234]})))
    | model | fit_time |
    |---|---|
    | a\\|b | 1.2 |
    """
    macros = _environment().get_template("macros.md.j2").module
    return str(macros.table(_table_view(frame))).rstrip("\n")


# -- rendering -----------------------------------------------------------------------------------
@functools.cache
def _markdown_it():
    """The Markdown-to-HTML converter of the report's text: CommonMark without raw HTML
    (so ``<script>`` in a model name is shown, not run), bold as ``<b>``."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False})
    md.add_render_rule("strong_open", lambda *args: "<b>")
    md.add_render_rule("strong_close", lambda *args: "</b>")
    return md


def _inline_html(text):
    """Markdown text as inline HTML (safe to insert: everything else is escaped)."""
    from markupsafe import Markup

    return Markup(_markdown_it().renderInline(str(text)).strip())


@functools.cache
def _environment():
    """The templates' jinja2 environment; HTML templates (``*.html.j2``) autoescape."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("sklearn_sfr.experiments", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["inline_html"] = _inline_html
    return env


def render_markdown(page):
    """``page`` (a :class:`Page`) as Markdown, from ``templates/report.md.j2``."""
    return _environment().get_template("report.md.j2").render(page=page)


def render_html(page):
    """``page`` (a :class:`Page`) as a standalone HTML document, from
    ``templates/report.html.j2`` (every plain-text value escaped, Markdown text converted)."""
    return _environment().get_template("report.html.j2").render(page=page)
