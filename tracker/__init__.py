"""The tracker: accounts, catalog, builds, tickets and the embedded server."""
