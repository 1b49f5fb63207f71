"""Parameter tuners: search, oracle and learned prediction of encoder settings."""
