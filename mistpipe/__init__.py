"""The admin's command line: log in, create games, push builds, manage users."""
