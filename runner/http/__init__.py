"""Talking to the API: our transport (transport), the client (client), what an answer means
(classify), the one retry loop (retry), the rate limiter (ratelimit), and what every command
that calls the API holds (caller)."""
