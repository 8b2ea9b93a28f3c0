"""Storage checks: does each Connector's storage take its credentials (a checker per backend)."""
