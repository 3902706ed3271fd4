"""The demo community: a reproducible synthetic member base and its history."""
