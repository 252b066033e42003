"""Rasa SDK custom actions for the CloudMax assistant (served by ``assistant serve-actions``)."""
