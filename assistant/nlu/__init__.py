"""The NLU service: intent classifier, entity extraction and the HTTP API Rasa calls."""
