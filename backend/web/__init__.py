"""Shared web pieces: errors, declared endpoints, limits, pages, the OpenAPI document."""
