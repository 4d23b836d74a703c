"""Runs against the API: send, track, reach, opt-outs."""
