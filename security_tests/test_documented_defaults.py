"""The defaults the README documents are the ones the settings hold: the table equals ``Settings()``. That the
hardened service applies them when nothing is set is each finding's test (HIGH-1 the rate limit, MED-1 the
body cap)."""

import pytest

from fraudpipe.settings import Settings
from security_tests.documented import documented_defaults, mismatches


@pytest.mark.white_box("compares the README's settings table with the Settings dataclass")
def test_readme_settings_table_equals_the_settings_defaults():
    documented = documented_defaults()
    assert mismatches(documented, Settings) == {}
    doctored = {**documented, "rate_limit": "1000/minute"}
    assert set(mismatches(doctored, Settings)) == {"rate_limit"}, "the comparison must see a changed default"
