"""The sample portfolio of a fictional person, as Markdown files with YAML front matter.

Loaded into an empty database at startup (``SEED_SAMPLE_CONTENT``) with the
same code as ``portfolio-ops import``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_DIR"]

SAMPLE_DIR = Path(__file__).parent
"""Folder of the sample files: ``<type>/<slug>.md``."""
