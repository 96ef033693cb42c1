"""Outputs: pure functions of a fitted result -- summary tables, publication tables, their renderers
(CSV, Markdown, LaTeX, HTML) and figures."""
