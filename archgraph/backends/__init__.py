"""Backends turn a verified graph into something that runs."""
