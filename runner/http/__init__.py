"""Talking to the API: our transport, the client, the retry loop, the rate limiter."""
