"""The `tunegate` command: registry, history, reports, review, export and serving (`main`), and the
data commands (`data`)."""
