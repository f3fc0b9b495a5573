"""Data curation: validate, deduplicate, scrub PII, split and detect leakage before anything trains.

`checks.check_files` runs every check over data files and returns a `CheckReport`; `card.build`
turns one into the dataset card the report shows; `clean` and `split` write new files and never
touch their input. The `tunegate data` commands and the training fixture call these.
"""
