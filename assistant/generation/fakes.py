"""Stand-in backends for tests and benchmarks of the delivery machinery (not of a model), chosen
with ``ASSISTANT_KB_GENERATOR=python:assistant.generation.fakes:<factory>``:

* ``slow``: takes ``ASSISTANT_TEST_GENERATOR_DELAY_S`` seconds (default 3), then quotes the first
  sentence of the best source, cited;
* ``echo``: the same at once (a no-op generator);
* ``failing``: always raises.
"""

from __future__ import annotations

import os
import time

from assistant.knowledge.generate import Draft, split_sentences


class SlowQuoteGenerator:
    name = "test-slow"

    def __init__(self, delay_s: float):
        self.delay_s = delay_s

    def generate(self, question, lang, sources):
        time.sleep(self.delay_s)
        sentences = split_sentences(sources[0].text, sources[0].lang) if sources else []
        if not sentences:
            return Draft("", supported=False, generator=self.name)
        return Draft(f"{sentences[0]}[{sources[0].n}]", [sources[0].n], True, generator=self.name)


class FailingGenerator:
    name = "test-failing"

    def generate(self, question, lang, sources):
        raise RuntimeError("this test backend always fails")


def slow(settings):
    return SlowQuoteGenerator(float(os.environ.get("ASSISTANT_TEST_GENERATOR_DELAY_S", "3")))


def echo(settings):
    return SlowQuoteGenerator(0.0)


def failing(settings):
    return FailingGenerator()
