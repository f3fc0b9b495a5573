"""The suites' shared fixtures come from the tunegate pytest plugin (harness.plugin):
`tunegate_run`, `adapter` (trains or reuses the candidate), `engine` and `evaluation`."""
