"""Plain ``torch.nn`` building blocks wrapped by csml's LightningModules."""
