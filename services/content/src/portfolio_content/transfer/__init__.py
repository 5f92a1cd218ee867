"""Content as a folder of Markdown files with YAML front matter (import, export, sample data)."""

__all__: list[str] = []
