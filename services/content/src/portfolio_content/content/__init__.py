"""Portfolio content items: validation, storage, history and the endpoints that serve them."""

__all__: list[str] = []
