"""`results`: the study figures quoted in the README ("What it shows") and in docs/results.md (the
text-to-video summary) regenerated from docs/results/*.json (--write), or checked against them (--check,
exit 1 when a file quotes other figures). The Distill tab words them at run time (engine.study_summary)."""

from __future__ import annotations

import sys
from pathlib import Path

from .progress import CliError


def cmd_results(args) -> int:
    from ..evaluation import claims  # numpy and the study report: only when the command runs

    try:
        studies = claims.load_studies(Path(args.results))
    except claims.ResultsError as err:
        raise CliError(str(err)) from None
    stale = []
    for path, block in ((Path(args.readme), claims.readme_block), (Path(args.results_page), claims.results_block)):
        try:
            current = path.read_text()
            wanted = claims.with_block(current, block(studies), path.name)
        except FileNotFoundError:
            raise CliError(f"{path} does not exist; give it with --readme / --results-page") from None
        except claims.ResultsError as err:
            raise CliError(str(err)) from None
        if wanted == current:
            print(f"{path}: study figures match {args.results}")
        elif args.write:
            tmp = path.with_name(path.name + ".tmp")  # a half-written file never replaces the good one
            tmp.write_text(wanted)
            tmp.replace(path)
            print(f"{path}: study figures rewritten")
        else:
            stale.append(path)
    for path in stale:
        print(
            f"{path}: its study figures differ from {args.results}/*.json; run `python -m engine results --write`",
            file=sys.stderr,
        )
    return 1 if stale else 0


def add_parsers(sub) -> None:
    from ..evaluation.claims import README, RESULTS, RESULTS_MD  # numpy: not at the CLI's start-up

    p = sub.add_parser(
        "results",
        help="the README's and docs/results.md's study figures, from docs/results/*.json",
        description=__doc__,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="rewrite the blocks between the files' markers")
    what.add_argument("--check", action="store_true", help="exit 1 when a block differs from what the JSON gives")
    p.add_argument("--readme", default=str(README), help="the README (default: the repo's)")
    p.add_argument("--results-page", default=str(RESULTS_MD), help="the results page (default: docs/results.md)")
    p.add_argument("--results", default=str(RESULTS), help="the folder of the study and drift JSONs")
    p.set_defaults(func=cmd_results)
