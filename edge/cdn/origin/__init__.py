"""Talking to origins: the origin client (aiohttp), the fast HTTP/1.1 client for plain-http origins, and S3
origins served from a local directory."""
