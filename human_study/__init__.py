"""The human preference study: a Gradio app that hosts the 300-prompt ranking study for real raters.

This package is for the study design (prompts, models, balanced and blinded assignment of images to
raters), storage of every judgement (SQLAlchemy; SQLite or PostgreSQL), the rating app itself, and
the aggregation of preferences into model rankings with confidence intervals and rater agreement,
written as result files for ``reports``.
"""
