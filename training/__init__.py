"""Training for tunegate: SFT with LoRA on TRL + PEFT, and a content-addressed adapter store."""
