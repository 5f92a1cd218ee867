"""Storage of the content service: table definitions, the database interface, migrations."""

__all__: list[str] = []
