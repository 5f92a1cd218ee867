"""Admin authentication: the ``X-Admin-Key`` check and the actor it yields."""
