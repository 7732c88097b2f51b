"""Shared fakes and helpers for the tests (never imported by the project itself)."""
