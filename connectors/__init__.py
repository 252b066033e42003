"""Channel connectors: one module per platform (``slack``, ``wechat``, ``web``), each turning a
platform message into a Rasa conversation turn (``rest``) and sending Rasa's replies back;
``relay`` holds what they share (deduplication, deadlines), ``outbox`` delivers late answers."""
