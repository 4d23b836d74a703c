"""From campaign and audience to exact requests: render, keys, planner, validation."""
