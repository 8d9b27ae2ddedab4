"""Reports from recorded runs: Markdown/HTML from templates, plots, comparisons, run listings."""
