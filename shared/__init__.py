"""Mist's domain core: chunking, manifests, signing, tickets, the chunk store and wire formats.

Pure logic with no web framework and no database, shared by every other part.
"""
