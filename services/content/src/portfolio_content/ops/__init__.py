"""Operator commands of the content service (``python -m portfolio_content.ops``, ``portfolio-ops``)."""

__all__: list[str] = []
