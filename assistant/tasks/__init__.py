"""Slow answer generation off the conversation's critical path.

A knowledge turn that needs generation becomes an :class:`~assistant.tasks.jobs.AnswerJob`. The
action waits for it up to ``ASSISTANT_ANSWER_BUDGET_S``; after that the user is told the answer is
on its way and a worker delivers it later into the same Rasa conversation (``trigger_intent``).
Celery workers with a Redis broker run the jobs when a broker is configured; without one, threads
of the action server do (see README, 'Workers').
"""
