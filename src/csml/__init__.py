"""csml: train, audit, track and promote customer-service chatbot models."""

__version__ = "0.1.0"
