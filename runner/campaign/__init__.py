"""The campaign file: YAML with positions, schema, API rules, templates, schedule."""
