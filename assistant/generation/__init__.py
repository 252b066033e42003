"""Answer generators behind one interface (``Generator.generate(question, lang, sources) -> Draft``),
chosen by ``ASSISTANT_KB_GENERATOR`` through :func:`assistant.generation.registry.make_generator`."""
