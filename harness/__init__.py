"""tunegate's library: config, data, engine, metrics, gates, registry and the pytest plugin."""
__version__ = "0.1.0"
