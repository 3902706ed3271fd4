"""Delivery: what an email says and how it is addressed: sandboxed Jinja2 rendering, the
message, signed links, send windows and the template checks of ``validate``."""
