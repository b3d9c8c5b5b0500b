"""Fixtures of the reliability tests (fault storms, hostile answers, bad input, secrets)."""
