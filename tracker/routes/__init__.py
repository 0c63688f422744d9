"""The tracker's HTTP routes: one module per group of routes, and the request plumbing they share (web.py)."""
