"""Notebook helpers: widgets, plots, display, exercise checkers and published numbers.

Needs the ``[notebooks]`` extra (ipywidgets, matplotlib, seaborn, pandas). This package only
*displays*: every number a widget shows comes from a tested function of the core, ``criteria`` or
``experiments``.
"""
