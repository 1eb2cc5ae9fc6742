"""What the CLI and the workflows run: one module per group of verbs, composing the packages."""
