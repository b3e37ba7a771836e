"""The report renderer: one Page, rendered to Markdown and to well-formed, escaped HTML from
the jinja2 templates, for the SFR and the Scene reports alike."""

from html.parser import HTMLParser
from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

from sklearn_sfr.experiments._render import BLOCK_KINDS, Page, markdown_table

#: HTML elements without an end tag.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class _Tree(HTMLParser):
    """Every tag of a page, the nesting errors, and its text (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open, self.errors, self.tags, self.chunks = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")

    def handle_data(self, data):
        self.chunks.append(data)


def parse_html(page):
    """``page`` parsed: the tree (``tags``, ``text``); fails if a tag is left open or is
    closed out of order."""
    tree = _Tree()
    tree.feed(page)
    tree.close()
    assert tree.errors == [] and tree.open == [], (tree.errors, tree.open)
    tree.text = " ".join("".join(tree.chunks).split())
    return tree


def plain(markdown_text):
    """Markdown text as a reader sees it in the HTML: bold and code marks removed."""
    return " ".join(markdown_text.replace("**", "").replace("`", "").split())


HOSTILE = "<script>alert('x')</script> & \"quotes\""


def _page():
    page = Page(f"Report {HOSTILE}")
    page.heading(f"Section {HOSTILE}")
    page.text(f"The **best** model is `fusion` {HOSTILE}.")
    page.note("**Smoke test**: a check that the pipeline runs.")
    page.bullets([f"**{HOSTILE}**: RMSE 0.631 dex, 95 % interval [0.612, 0.650].", "a < b"])
    page.table(pd.DataFrame({"model": [HOSTILE, "tree|lines"], "rmse": [0.41234, np.nan]}))
    page.figure("/somewhere/fig <1>.png", f"caption {HOSTILE}")
    return page


def test_every_block_kind_has_a_template_macro():
    page = _page()
    assert sorted({kind for kind, _ in page.blocks}) == sorted(BLOCK_KINDS)
    templates = files("sklearn_sfr.experiments") / "templates"
    for name in ("macros.md.j2", "macros.html.j2"):
        text = (templates / name).read_text(encoding="utf-8")
        for kind in BLOCK_KINDS:
            assert f"{{% macro {kind}(" in text, (name, kind)


def test_html_is_well_formed_and_escapes_every_plain_and_markdown_value():
    html = _page().html()
    assert html.startswith("<!DOCTYPE html>")
    tree = parse_html(html)
    # A model name holding a script is text on the page, never an element.
    assert "script" not in {tag for tag, _ in tree.tags}
    assert "<script>" not in html and "&lt;script&gt;" in html
    # Shown as written wherever it was put: <title>, <h1>, <h2>, text, list, table, caption.
    assert tree.text.count(HOSTILE) == 7
    images = [attrs for tag, attrs in tree.tags if tag == "img"]
    assert images == [{"src": "fig <1>.png", "alt": f"caption {HOSTILE}"}]
    assert "<b>best</b>" in html and "<code>fusion</code>" in html
    assert '<p class="note"><b>Smoke test</b>: a check that the pipeline runs.</p>' in html


def _texts(kind, value):
    """The texts a block shows."""
    if kind == "bullets":
        return value
    if kind == "table":
        return [*value["columns"], *(cell for row in value["rows"] for cell in row)]
    if kind == "figure":
        return [value["caption"]]
    return [value]


def test_markdown_and_html_hold_the_same_text():
    page = _page()
    markdown, tree = page.markdown(), parse_html(page.html())
    for kind, value in page.blocks:
        for text in _texts(kind, value):
            assert plain(text) in tree.text, (kind, text)
            # Markdown keeps the text as written (a table cell's pipe escaped).
            assert text.replace("|", "\\|") in markdown, (kind, text)
    assert "| tree\\|lines | – |" in markdown  # a pipe in a cell does not split the row
    assert "> **Smoke test**: a check that the pipeline runs." in markdown
    assert "![caption" in markdown and "](fig <1>.png)" in markdown


def test_markdown_layout():
    page = Page("Title")
    page.heading("Part")
    page.text("One paragraph.")
    page.bullets(["first", "second"])
    page.bullets([])  # nothing to list: no block
    page.table(pd.DataFrame({"model": ["a"], "fit_time": [12.345], "n": [3]}))
    page.figure("f.png", "A figure")
    assert page.markdown() == (
        "# Title\n\n## Part\n\nOne paragraph.\n\n- first\n- second\n\n"
        "| model | fit_time | n |\n|---|---|---|\n| a | 12.3 | 3 |\n\n"
        "![A figure](f.png)\n\n*A figure*\n"
    )


def test_markdown_table_is_the_templates_table():
    frame = pd.DataFrame({"model": ["x|y"], "rmse": [np.float32(0.5)], "peak_memory_mb": [7.0]})
    assert markdown_table(frame).splitlines() == [
        "| model | rmse | peak_memory_mb |",
        "|---|---|---|",
        "| x\\|y | 0.500 | 7.0 |",
    ]
    page = Page("t")
    page.table(frame)
    assert markdown_table(frame) in page.markdown()


@pytest.mark.parametrize("text", ["[link](https://example.org)", "a_b_c and 2 * 3 * 4"])
def test_markdown_text_is_converted_by_a_markdown_parser(text):
    page = Page("t")
    page.text(text)
    html = page.html()
    parse_html(html)
    if text.startswith("["):
        assert '<a href="https://example.org">link</a>' in html
    else:  # no emphasis inside words or between spaced stars
        assert "<p>a_b_c and 2 * 3 * 4</p>" in html
