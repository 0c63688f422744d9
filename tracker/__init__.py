"""The tracker: accounts, catalog, builds, tickets and the embedded server.

routes/     the HTTP routes, one module per group, and the request plumbing they share (routes/web.py)
admin/      the admin site under /admin
jobs/       the background job queue and what the worker runs: patches, gc, scrub, Steam, Discord
backups/    backing up and restoring a whole server
cli/        the command lines: mist-server, mist-tracker, mist-worker, mist-admin
db/         the database (SQLAlchemy and Alembic live only here)
the rest    the domain: config, auth, sessions, throttle, keys, the planner, news, counters
"""
