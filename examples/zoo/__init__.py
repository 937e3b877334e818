"""Real pretrained models from public packages, rebuilt layer by layer; see README.md here."""
