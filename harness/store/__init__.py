"""What runs keep: the result cache, the registry of promoted adapters and the run history (SQLite in
the workspace, or MLflow shared by every machine), and results.json."""
