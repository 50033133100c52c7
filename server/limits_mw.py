"""A pure ASGI middleware that refuses request bodies over a size with 413 (by ``Content-Length``, and by
counting what a chunked body actually sends)."""

from __future__ import annotations

import json


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a body without a length grows past the limit."""


class BodySizeLimit:
    """Wrap an ASGI app; bodies over ``max_bytes`` get ``413`` with an OpenAI-shaped error."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send, status: int = 413) -> None:
        if status == 413:
            error = {"message": f"Request body over {self.max_bytes} bytes.", "type": "request_too_large"}
        else:
            error = {"message": "Content-Length is not a number.", "type": "invalid_request_error"}
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if length is not None and int(length) > self.max_bytes:
                return await self._refuse(send)
        except ValueError:
            return await self._refuse(send, 400)
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
