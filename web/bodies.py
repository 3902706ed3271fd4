"""Request bodies read with a limit: a body over it is refused (413) before it is read in
full, whether its ``Content-Length`` says so at once or it streams past the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body of ``request``; ``BodyTooLarge`` once it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise HTTPException(400, "Content-Length is not a number") from None
        if length > limit:
            raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
