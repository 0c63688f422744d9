"""The services' plumbing, shared by the tracker and the seeder: running an aiohttp server, logs and request ids,
metrics, health checks, forwarded addresses, the server's disk.

Not the pure core: these modules import aiohttp (and prometheus_client, a `server` extra), and the friends' side
never imports them. Everything else under shared/ stays free of web frameworks and databases.
"""
