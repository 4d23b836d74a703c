"""Consent: what a reply means (``match``), kept as data with its sources (``vocabulary.json``).

The ledger that records it for a whole state is runner.store.ledger; the reading of replies
before a chat is messaged again is runner.run.consent_gate.
"""
