"""Prefect flows: thin shells that call the rooms, a batch per task."""
