"""Sphinx configuration of the course website (staged by website/build.py; see its docstring).

Nothing is fetched from the internet, while building or while reading:
- MathJax 3 is served from ``_static/mathjax/`` (copied from the ``mathjax`` package);
  Sphinx would otherwise point every page with maths at a CDN;
- MyST-NB executes nothing (the chapters arrive executed) and loads no widget
  JavaScript (``nb_ipywidgets_js`` is empty; widgets arrive as static pictures),
  where it would otherwise add require.js and the widget manager from a CDN;
- the book theme (pydata-sphinx-theme underneath) ships its fonts and icons;
  no analytics, no launch buttons, no repository buttons, no version switcher.
"""

project = "MAML and its first-order variants"
author = "the MAML course team"
copyright = "the MAML course team"

extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath"]
# Heading anchors, so a link to a section of another page resolves.
myst_heading_anchors = 3

# Chapters are executed (once, cached) by website/build.py before Sphinx runs.
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# Result pages that docs/benchmarks.md links to are reached by those links, not the sidebar;
# some of them are fragments written by a benchmark script that start at a level-2 heading.
suppress_warnings = ["mystnb.unknown_mime_type", "toc.not_included", "myst.header"]

html_theme = "sphinx_book_theme"
html_title = "MAML course"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    # The book theme keeps its search in the sidebar; no second one in a top bar.
    "navbar_persistent": [],
}
html_last_updated_fmt = None
# Without a default the theme's script logs "Got invalid theme mode" as a console error.
html_context = {"default_mode": "auto"}

# Local MathJax 3 (relative to _static/).
mathjax_path = "mathjax/tex-mml-chtml.js"
