"""Conversation audits: simulated customers pursue goals over several turns with a deployed bot.

- :mod:`.goals`: what a customer wants (Schema-Guided Dialogue tasks, the bot's knowledge base);
- :mod:`.simulator`: the template customer and its personas (calm, impatient, angry, switcher, corrector);
- :mod:`.runner`: conversations held concurrently, resumable, one JSONL line per finished conversation.

A suite turns on conversations with a ``conversations:`` mapping (``audits/conversations/suite.yaml``); the
metrics of :mod:`csml.audit.metrics.conversation` score the transcripts.
"""
