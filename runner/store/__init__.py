"""What survives a run: the journal."""
