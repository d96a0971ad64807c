"""Convene's front door: the aiohttp app, WebSocket signaling, REST API and access tokens."""
