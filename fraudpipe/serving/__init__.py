"""The inference service: an app factory that composes one module per security control."""
