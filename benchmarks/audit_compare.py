"""Does ``csml audit compare`` flag a real regression, and only a real one?

Audits :mod:`csml.devtools.faulty_bot` with the ``kestrel_support`` suite (as ``benchmarks/audit_blackbox.py``
does) at corruption rate ``--rate`` with seeds 0..``--pairs`` and at ``--worse-rate`` with seeds 0..``--pairs``-1,
then compares, with :func:`csml.audit.compare.compare` (paired permutation tests, alpha 0.05):

- **planted regressions**: the bot at ``--rate`` against the same bot at ``--worse-rate`` (same seed);
- **unchanged bots**: the bot at ``--rate`` with seed s against seed s + 1 (which answers it corrupts changes).

Prints per comparison the gated metrics found significantly worse and the Holm-adjusted p-values of
``groundedness`` and ``fabricated_entities``, then how many planted regressions were flagged and how many unchanged pairs were.
Goal (issue 14): the planted regression flagged at p < 0.05, unchanged bots not flagged.

    .venv/bin/python benchmarks/audit_compare.py --model runs/judge_groundedness/<run>/model
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_blackbox import run

from csml.config import OFFLINE_ENV


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="groundedness judge: model folder or MLflow URI")
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--worse-rate", type=float, default=0.6)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.WARNING)
    from csml.audit.compare import compare, load_audit

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def audit(rate: float, seed: int) -> Path:
            run(args.model, rate, seed, 1, 0.0, root, [])
            return root / f"rate{rate}_seed{seed}" / "audit"

        base = [audit(args.rate, seed) for seed in range(args.pairs + 1)]
        worse = [audit(args.worse_rate, seed) for seed in range(args.pairs)]
        outcomes: dict[str, list[bool]] = {"planted": [], "unchanged": []}
        pairs = [
            ("planted", base[s], worse[s], f"seed {s}: rate {args.rate} -> {args.worse_rate}")
            for s in range(args.pairs)
        ]
        pairs += [
            ("unchanged", base[s], base[s + 1], f"rate {args.rate}: seed {s} -> {s + 1}")
            for s in range(args.pairs)
        ]
        for kind, a, b, label in pairs:
            result = compare(load_audit(str(a)), load_audit(str(b)))
            p = {m: result["metrics"][m]["p_holm"] for m in ("groundedness", "fabricated_entities")}
            deltas = {m: result["metrics"][m]["delta"] for m in p}
            outcomes[kind].append(bool(result["gated_regressions"]))
            print(
                f"{kind:<9} {label:<28} flagged {result['gated_regressions'] or '-'}  "
                + "  ".join(f"{m} delta {deltas[m]:+.3f} p (Holm) {p[m]:.4f}" for m in p)
            )
    print(
        f"planted regressions flagged: {sum(outcomes['planted'])}/{len(outcomes['planted'])}; "
        f"unchanged bots flagged: {sum(outcomes['unchanged'])}/{len(outcomes['unchanged'])}"
    )


if __name__ == "__main__":
    main()
