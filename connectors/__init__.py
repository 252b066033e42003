"""Channel connectors. For now: a client of Rasa's REST channel (used by tests and demos)."""
