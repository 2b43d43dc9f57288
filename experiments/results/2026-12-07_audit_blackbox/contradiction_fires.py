"""How often the judge's contradiction rule fires on the full labelled test splits, and on how many
unsupported claims (no model needed).

    CSML_EXTERNAL_DATA=../shared/data .venv/bin/python experiments/results/2026-12-07_audit_blackbox/contradiction_fires.py
"""

import sys
from pathlib import Path

from hydra.utils import instantiate

from csml.config import compose
from csml.judge import delucionqa

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import judge_cross_domain as cross_domain

cfg = compose("train", ["experiment=judge_groundedness"])
source = instantiate(cfg.data.source)
tests = cross_domain.split_pairs(source.load("grounded")["test"])
tests |= cross_domain.split_pairs(source.summary_records("test", 3))
samples, vocabulary = delucionqa.load(Path(cfg.paths.external_data_dir) / "delucionqa")
for sentences, suffix in ((False, ""), (True, "_sentences")):
    tests[f"delucionqa_test{suffix}"] = delucionqa.labelled_pairs(samples["test"], vocabulary, sentences)
for name, (claims, knowledge, supported) in tests.items():
    fired = [cross_domain.contradicted(c, k, 96) for c, k in zip(claims, knowledge, strict=True)]
    wrong = sum(f and s for f, s in zip(fired, supported, strict=True))
    print(f"{name}: {len(claims)} pairs, rule fires {sum(fired)}, on supported claims {wrong}")
