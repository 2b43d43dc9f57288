"""Plain ``nn.Module`` parts of the response models."""
