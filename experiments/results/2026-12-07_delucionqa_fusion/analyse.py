import pickle, sys, numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.linear_model import LogisticRegression
sys.path.insert(0,'/work/main/src')
from csml.judge.calibration import choose_threshold, balanced_accuracy_at
from csml.judge.baselines import content_words
res = pickle.load(open(sys.argv[1],'rb'))
thr = float(sys.argv[2])
def logit(p): p=np.clip(p,1e-4,1-1e-4); return np.log(p/(1-p))
def claim_overlap(claims, knowledge):
    # min over claims of share of content words in knowledge
    out=[]
    for cl, k in zip(claims, knowledge):
        known=set(content_words(k)); vals=[]
        for c in cl:
            w=content_words(c); vals.append(sum(x in known for x in w)/len(w) if w else 1.0)
        out.append(min(vals) if vals else 1.0)
    return np.array(out)
for name, r in res.items():
    r['claim_overlap'] = claim_overlap(r['claim_texts'], r['knowledge'])
def feats(r): return np.c_[logit(r['judge']), r['overlap'], r['claim_overlap']]
print(f"{'set':32} {'n':>4} {'sup':>5} | judge BA@thr AUC | overlap AUC | claimov AUC | best-BA judge")
for name, r in res.items():
    y=r['y']
    print(f"{name:32} {len(y):4d} {y.mean():5.2f} | {balanced_accuracy_at(r['judge'],y,thr):.3f} {roc_auc_score(y,r['judge']):.3f} | {roc_auc_score(y,r['overlap']):.3f} | {roc_auc_score(y,r['claim_overlap']):.3f} | {choose_threshold(r['judge'],y)[1]:.3f}")
# fusion: fit on val sets (domain balanced, excluding delucionqa and no_generic dupes)
val=[n for n in res if n.startswith('val/') and 'delucionqa' not in n and 'no_generic' not in n]
for cols,label in (([0,1],'judge+overlap'),([0,2],'judge+claim_overlap'),([0,1,2],'all3')):
    X=np.vstack([feats(res[n])[:,cols] for n in val]); y=np.concatenate([res[n]['y'] for n in val])
    w=np.concatenate([np.full(len(res[n]['y']),1/len(res[n]['y'])) for n in val])
    lr=LogisticRegression(C=1.0).fit(X,y,sample_weight=w*len(y))
    # threshold: mean-over-domain BA on val
    cands=np.linspace(0.05,0.95,91)
    def dom_ba(t): return np.mean([balanced_accuracy_at(lr.predict_proba(feats(res[n])[:,cols])[:,1],res[n]['y'],t) for n in val])
    t=max(cands,key=dom_ba)
    print(f"\n{label}: coef {lr.coef_.round(3)} b {lr.intercept_.round(3)} thr {t:.2f} val-domain-BA {dom_ba(t):.3f}")
    for name,r in res.items():
        p=lr.predict_proba(feats(r)[:,cols])[:,1]
        print(f"  {name:32} BA@thr {balanced_accuracy_at(p,r['y'],t):.3f} AUC {roc_auc_score(r['y'],p):.3f}")
