"""HTML rendering of result files: one self-contained page per run, and an index of runs.

Pages are jinja2 templates (autoescape on) extending templates/base.html.j2, with figures
inlined as PNG data URIs; see reports.html for the shared environment and helpers.
"""
