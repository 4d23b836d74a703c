"""Views: run reports (text, markdown, json, html), plans and diagnostics."""
