"""Examples (JSONL records validated into typed examples, splits, leakage) and the rubrics that
score answers to them."""
