"""Auditing deployed chatbots: adapters that talk to a bot, suites declared as data under ``audits/``,
offline metrics, a resumable runner and a scorecard CI can gate on (``csml audit``)."""
