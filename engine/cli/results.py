"""`results`: the README's "What it shows" block regenerated from docs/results/study*.json (--write), or
checked against them (--check, exit 1 when the README quotes other figures)."""

from __future__ import annotations

import sys
from pathlib import Path

from .progress import CliError


def cmd_results(args) -> int:
    from ..evaluation import claims

    readme = Path(args.readme)
    try:
        current = readme.read_text()
        wanted = claims.with_block(current, claims.readme_block(claims.load_studies(Path(args.results))))
    except FileNotFoundError:
        raise CliError(f"{readme} does not exist; give the README with --readme") from None
    except claims.ResultsError as err:
        raise CliError(str(err)) from None
    if args.write:
        if wanted != current:
            tmp = readme.with_name(readme.name + ".tmp")  # a half-written README never replaces the good one
            tmp.write_text(wanted)
            tmp.replace(readme)
        print(f"{readme}: study figures {'rewritten' if wanted != current else 'already up to date'}")
        return 0
    if wanted != current:
        print(
            f"{readme}: its study figures differ from {args.results}/study*.json; run "
            "`python -m engine results --write`",
            file=sys.stderr,
        )
        return 1
    print(f"{readme}: study figures match {args.results}")
    return 0


def add_parsers(sub) -> None:
    from ..evaluation.claims import README, RESULTS

    p = sub.add_parser(
        "results", help="the README's study figures, regenerated from docs/results/*.json", description=__doc__
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="rewrite the block between the README's markers")
    what.add_argument("--check", action="store_true", help="exit 1 when the README's block differs")
    p.add_argument("--readme", default=str(README), help="the README to write or check (default: the repo's)")
    p.add_argument("--results", default=str(RESULTS), help="the folder of study.json, study-i2v.json, study-ar.json")
    p.set_defaults(func=cmd_results)
