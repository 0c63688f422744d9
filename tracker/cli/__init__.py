"""The server's command lines: mist-server, mist-tracker, mist-worker, mist-admin, and the entry points that start them."""
