"""Background jobs: the queue (huey lives only in queue.py), its journal, and the work the worker runs."""
