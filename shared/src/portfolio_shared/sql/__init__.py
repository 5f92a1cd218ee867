"""SQLite helpers of the services that keep a database (content, chat).

Needs the ``sql`` extra of ``portfolio-shared`` (SQLAlchemy and libsql-client).
"""
