"""The assessment report: a pytest plugin that turns outcomes and evidence into HTML extras, JSON and PDF."""
