pytest_plugins = ["security_tests.report.plugin"]
