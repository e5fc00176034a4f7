"""What the commands and the daemon call: each use case once, above the engine and the report."""
