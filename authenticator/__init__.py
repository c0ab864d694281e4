"""Reference push authenticator: the device side of docs' PUSH_SPEC, for tests and operators.

signing (request signatures), client.Device (the device API), push_endpoint.LocalPushEndpoint
(a loopback Web Push endpoint), state (the 0600 JSON state file); `python -m authenticator` is the CLI.
"""
