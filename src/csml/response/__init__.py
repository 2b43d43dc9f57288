"""Response models: select (retrieval) an agent reply for a customer query, and score replies offline.

``csml train-response`` fine-tunes a MiniLM bi-encoder on query -> response pairs with in-batch negatives
(:mod:`csml.response.train`), indexes the response bank (:mod:`csml.response.index`) and logs the result to
MLflow as a pyfunc (:mod:`csml.response.pyfunc`). :mod:`csml.response.metrics` holds the retrieval metrics
(recall@k, MRR) and the offline response metrics (BLEU, ROUGE-L, embedding similarity, distinct-n, length,
placeholder fidelity); :mod:`csml.response.placeholders` the handling of ``{{Order Number}}``-style slots.
"""
