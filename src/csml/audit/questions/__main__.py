"""Rewrites the bundled question files of the audit suites from ``data/`` (all, or those named).

python -m csml.audit.questions                    # every suite of csml.audit.questions.BUNDLED
python -m csml.audit.questions nlu_clinc150 escalation
"""

from __future__ import annotations

import sys

from csml.audit.questions import BUNDLED, write_questions
from csml.config import project_root
from csml.registry import UnknownNameError


def main(names: list[str]) -> None:
    root = project_root()
    for name in names or BUNDLED.names():
        try:
            bundled = BUNDLED[name]
        except UnknownNameError as error:
            sys.exit(str(error))
        samples = bundled.build(root / "data")
        write_questions(samples, root / "audits" / name / bundled.file)
        print(f"{name}: {len(samples)} questions -> audits/{name}/{bundled.file}")
        for companion in bundled.companions(root / "audits" / name) if bundled.companions else []:
            print(f"{name}: -> audits/{name}/{companion}")


if __name__ == "__main__":
    main(sys.argv[1:])
