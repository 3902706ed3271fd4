"""The HTTP service: an entry point like ``cli`` and ``flows``, a thin shell over use cases.

``web.app.create_app`` builds the ASGI application (Starlette); ``web.asgi:app`` is one built
from the environment, for operators who run it under their own server. Each module turns
requests into calls of the use cases in ``inbound`` and their answers into responses.
"""
