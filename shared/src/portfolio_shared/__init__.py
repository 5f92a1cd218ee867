"""Code that every portfolio service shares: settings, logging, the NATS contract and helpers."""
