"""Generative response models: a causal or seq2seq LM fine-tuned with LoRA on (conversation -> agent reply).

:mod:`.prompts` turns a conversation and its intent / journey stage / channel into the model's prompt,
:mod:`.loading` loads the base model (optionally 8/4-bit) and wraps it in LoRA adapters,
:mod:`.datamodule` batches pairs with the loss on response tokens only, :mod:`.module` is the
LightningModule, :mod:`.generation` generates replies with their mean token log-prob, :mod:`.pyfunc` the
MLflow flavour and :mod:`.train` the ``csml train-response`` pipeline for these models.
"""
