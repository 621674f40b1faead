"""The course's own tooling: building the learner notebooks, running and timing them, pre-downloading
the full profile, building the site. Not part of ``ftlib``: a learner never imports it.

    python -m tools.course build | check | run | download
    python -m tools.book build/book
"""
