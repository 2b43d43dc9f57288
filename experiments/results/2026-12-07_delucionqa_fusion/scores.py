"""Dump judge / overlap scores per row for validation and test sets (fusion study)."""
import os, sys, json, pickle
import numpy as np
sys.path.insert(0, '/work/main/benchmarks')
from judge_cross_domain import split_pairs
from csml.config import OFFLINE_ENV, compose
for k, v in OFFLINE_ENV.items(): os.environ.setdefault(k, v)
import torch; torch.set_num_threads(2)
from hydra.utils import instantiate
from csml.judge.judge import GroundednessJudge
from csml.judge.baselines import lexical_overlap
from csml.judge import delucionqa
from pathlib import Path
model, out = sys.argv[1], sys.argv[2]
overrides = sys.argv[3:]
cfg = compose("train", ["experiment=judge_groundedness", *overrides])
splits = instantiate(cfg.data.source).load("grounded")
sets = {f"val/{k}": v for k, v in split_pairs(splits["validation"]).items()}
sets |= {f"test/{k}": v for k, v in split_pairs(splits["test"]).items()}
sets |= {f"test/{k}": v for k, v in split_pairs(instantiate(cfg.data.source).summary_records("test", 3)).items()}
samples, voc = delucionqa.load(Path(cfg.paths.external_data_dir) / "delucionqa")
for split in ("validation", "test"):
    for sent, suf in ((False, ""), (True, "_sentences")):
        sets[f"{'val' if split=='validation' else 'test'}/delucionqa{suf}"] = delucionqa.labelled_pairs(samples[split], voc, sent)
judge = GroundednessJudge.load(model, cfg.tracking.uri)
rng = np.random.default_rng(0)
res = {}
for name, (c, k, y) in sets.items():
    if len(c) > 600:
        keep = np.sort(rng.choice(len(c), 600, replace=False)); c=[c[i] for i in keep]; k=[k[i] for i in keep]; y=y[keep]
    verdicts = judge.judge_many(c, [[x] for x in k])
    claim_scores = [[cv.score for cv in v.claims] for v in verdicts]
    res[name] = dict(claims=c, knowledge=k, y=y, judge=np.array([1.0 if v.score is None else v.score for v in verdicts]),
                     claim_scores=claim_scores, claim_texts=[[cv.claim.text for cv in v.claims] for v in verdicts],
                     overlap=lexical_overlap(c, k))
    print(name, len(c), flush=True)
pickle.dump(res, open(out, 'wb'))
