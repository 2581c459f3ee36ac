"""Attacks as plain functions over a small client interface; each returns an ``Evidence``
(``security_tests/contract.py``): the tests assert on it, the report renders it.
"""
