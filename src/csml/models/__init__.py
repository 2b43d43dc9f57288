"""LightningModules for csml's model kinds; plain ``nn.Module`` parts live in ``components/``."""
