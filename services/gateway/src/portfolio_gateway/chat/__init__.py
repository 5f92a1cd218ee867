"""The gateway's chat routes: the visitor chat (JSON or Server-Sent Events) and admin sessions."""
