"""Blooio's webhooks: checking a delivery's signature (``verify``), reading its event
(``events``), and writing what it says into the state (``sink``); `campaign listen` serves them."""
