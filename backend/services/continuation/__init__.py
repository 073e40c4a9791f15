"""Prompt continuation with large vocabularies: back off, constrain, renormalise (see README.md)."""
