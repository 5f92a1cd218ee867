"""The public content response cache and its event-driven invalidation."""
