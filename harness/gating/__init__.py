"""Gates and the paired statistics they use."""
