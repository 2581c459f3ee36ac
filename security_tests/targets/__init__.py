"""Targets of the assessment: the profile (the one schema every attack reads) and fraudpipe's own profile."""
