"""The friends' client: talks to the tracker and seeder, installs, updates, verifies and repairs games."""
