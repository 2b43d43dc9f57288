"""The reference customer-service bot: extractive RAG over a knowledge base, served over HTTP.

``csml serve`` runs it; :func:`csml.bot.app.create_app` builds the app from a config. It answers from a
knowledge base (:mod:`csml.knowledge`) with dense retrieval (:mod:`csml.bot.retrieval`), routes with optional
registry models (:mod:`csml.bot.routing`), and injects seeded faults and fabricated facts for validating
audits (:mod:`csml.bot.faults`, :mod:`csml.bot.fabrication`).
"""
