"""Backups and restores of a whole server: the backup directory, making one, restoring one, and the mark of one unfinished."""
