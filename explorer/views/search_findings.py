"""A search's findings in plain language: what it did, which parameters mattered, and whether the
verification on fresh seeds confirmed its best, named with its network (`tables.named`).
"""

from collections.abc import Mapping

from explorer.analysis.comparisons import MCNEMAR, NOT_DETECTED
from explorer.analysis.findings import Effect, SearchFinding
from explorer.views.findings import NoNetworks, identical, percent, points, runs_text
from explorer.views.tables import named


def _numbers(effect: Effect) -> str:
    """An effect's figures in brackets: the difference, then its interval or McNemar's p."""
    if effect.test == MCNEMAR:
        return f"{points(effect.difference)} points, p = {effect.p_value:.3g} after Holm"
    return f"{points(effect.difference)} points, 95% CI {points(effect.ci_low)} to {points(effect.ci_high)}"


def search_sentences(finding: SearchFinding, networks: Mapping[str, str] = NoNetworks) -> list[str]:
    """A search in three sentences: what it did, the parameters that mattered most, and whether the
    verification on fresh seeds confirmed its best (whose search score is never given as a result);
    a candidate verified on fresh seeds is named with its network (`networks`, as for
    `finding_sentences`)."""
    parts = [f"{finding.complete} complete", f"{finding.pruned} stopped early by successive halving"]
    if finding.budget_stopped:
        parts.append(f"{finding.budget_stopped} stopped by the budget")
    if finding.failed:
        parts.append(f"{finding.failed} diverged or refused")
    lines = [
        f"The search {finding.name!r} tried {finding.candidates} candidate{'' if finding.candidates == 1 else 's'} "
        f"in {finding.minutes:.1f} min ({', '.join(parts)})."
    ]
    if finding.importances:
        top = [f"{name} {value:.2f}" for name, value in finding.importances[:3]]
        listed = ", ".join(top[:-1]) + " and " + top[-1] if len(top) > 1 else top[0]
        lines.append(
            f"The parameters that mattered most, by Optuna's importance evaluator (PED-ANOVA over the "
            f"{finding.complete} complete candidates; importances sum to 1): {listed}."
        )
    else:
        lines.append(
            f"Too few candidates completed ({finding.complete}) for Optuna to weigh the parameters' importance."
        )
    return lines + _verification_sentences(finding, networks)


def _verification_sentences(finding: SearchFinding, networks: Mapping[str, str]) -> list[str]:
    if finding.best is None:
        return ["No candidate of the search trained to its last epoch, so none was verified."]
    chosen = (
        f"The search's best by validation accuracy was {named(finding.best, networks)}, at "
        f"{finding.best_search_val_accuracy:.4f} during the search (it was chosen because it was high, so that "
        "score is not a result)"
    )
    if finding.best_status is None:
        return [f"{chosen}; it has not been trained again on fresh seeds in this run folder, so nothing confirms it."]
    if finding.best_test_accuracy is None:
        return [
            f"{chosen}; trained again on fresh seeds, it {finding.best_status}, so the verification did not confirm it."
        ]
    lines = [
        f"{chosen}.",
        f"Trained again on fresh seeds, its mean test accuracy is {percent(finding.best_test_accuracy)} over "
        f"{runs_text(finding.best_runs)}, rank {finding.best_rank} of {finding.ranked} in the verified "
        f"leaderboard{_against_reference(finding)}.",
    ]
    if finding.confirmed:
        lines.append(
            f"The verification confirmed it: {finding.best} is also the verification's best by mean validation "
            "accuracy on fresh seeds."
        )
    else:
        effect = finding.vs_verified_best
        against = f"; against it, {finding.best} is {_verdict_phrase(effect)}" if effect is not None else ""
        lines.append(
            f"The verification did not confirm it: the verification's best by mean validation accuracy on fresh "
            f"seeds is {named(finding.verified_best, networks)}{against}."
        )
    return lines


def _verdict_phrase(effect: Effect) -> str:
    """ "worse (-0.30 points, 95% CI ...)", "not detectably different with 3 runs (...)"."""
    if effect.verdict == NOT_DETECTED and identical(effect):
        return f"identical on every one of its {runs_text(effect.runs)}"
    if effect.verdict == NOT_DETECTED:
        return f"not detectably different with {runs_text(effect.runs)} ({_numbers(effect)})"
    return f"{effect.verdict} ({_numbers(effect)})"


def _against_reference(finding: SearchFinding) -> str:
    effect = finding.vs_reference
    if effect is None or effect.verdict is None:
        return ""
    if effect.verdict == "reference":
        return "; it is the reference"
    return f"; against the reference, {finding.reference}, it is {_verdict_phrase(effect)}"
