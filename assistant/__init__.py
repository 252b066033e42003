"""CloudMax customer-service assistant: NLU service, knowledge base, business data and stack tooling.

Importing this package does no work: models, databases and stores are created by the
factories in its modules, from a :class:`assistant.settings.Settings` object.
"""

__version__ = "0.1.0"
