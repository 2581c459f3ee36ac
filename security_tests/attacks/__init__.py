"""Attacks as plain functions over a small client interface; each returns a JSON-safe evidence dict.

Every evidence dict carries ``attack_succeeded``: the tests assert on it, the report renders it.
"""
