"""An offline groundedness (hallucination) judge: a cross-encoder that says whether a knowledge passage
supports a claim, trained by csml's own pipeline on knowledge-base text with FactCC-style perturbations and
on real labelled data (BEGIN), and used by the audit suites as their default judge."""
