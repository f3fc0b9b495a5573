"""tunegate's evaluation suites, one pytest file each: run them with `pytest suites/`. `tunegate init`
wrote these files; after upgrading tunegate, `tunegate init --suites --force` brings them up to date.

The suites' shared fixtures come from the tunegate pytest plugin (harness.plugin):
`tunegate_run`, `adapter` (trains or reuses the candidate), `engine` and `evaluation`."""
