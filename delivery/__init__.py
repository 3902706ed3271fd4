"""Delivery: email rendering in a sandboxed Jinja2 environment (senders come later)."""
