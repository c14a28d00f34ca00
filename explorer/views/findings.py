"""The findings in plain language: one sentence per factor the sweep varied, one on why the best is
the best, and one on how sure the verdicts are. Each number is one of `summary.json`'s, in
percentage points (a difference of 0.0052 in accuracy reads "+0.52 points").

"Not detected" is said with its number of runs, never as "no effect": a sweep that cannot tell two
configurations apart has not shown that they are the same.
"""

from collections.abc import Sequence

from explorer.analysis.comparisons import MCNEMAR, NOT_DETECTED, PAIRED_T
from explorer.analysis.findings import BestFinding, Effect, FactorFinding, Findings, SearchFinding
from explorer.config.defaults import MAX_RUNS_NEEDED, POWER

# How each factor and its values read: (the factor's name, a value's wording).
FACTOR_WORDS = {
    "width": ("Width", "{} units"),
    "depth": ("Depth", "{} hidden layer(s)"),
    "activation": ("Hidden activation", "{}"),
    "output_activation": ("Output activation", "{}"),
    "dropout": ("Dropout", "rate {}"),
    "optimizer": ("Optimizer", "{}"),
    "learning_rate": ("Learning rate", "{}"),
    "batch_size": ("Batch size", "{}"),
    "epochs": ("Epochs", "{}"),
    "augment": ("Augmentation", "{}"),
    "batch_norm": ("Batch normalization", "{}"),
    "label_smoothing": ("Label smoothing", "{}"),
    "lr_schedule": ("Learning-rate schedule", "{}"),
    "weight_decay": ("Weight decay", "{}"),
    "max_norm": ("Max-norm", "{}"),
    "early_stopping": ("Early stopping", "patience {}"),
}

# Techniques whose zero, or false, means "not used".
OFF_WHEN_ZERO = ("batch_norm", "label_smoothing", "weight_decay", "max_norm", "early_stopping")


def value_text(factor: str, value: object) -> str:
    """A factor's value in words: "512 units", "2 hidden layers", "tanh", "on", "off"."""
    if factor in OFF_WHEN_ZERO and not value:
        return "off"
    if value is True:
        return "on"
    text = FACTOR_WORDS[factor][1].format(value)
    return text.replace("(s)", "" if value == 1 else "s")


def points(fraction: float) -> str:
    return f"{fraction * 100:+.2f}"


def percent(fraction: float) -> str:
    return f"{fraction * 100:.2f}%"


def runs_text(runs: int | None) -> str:
    return f"{runs} run{'' if runs == 1 else 's'}"


def _numbers(effect: Effect) -> str:
    """An effect's figures in brackets: the difference, then its interval or McNemar's p."""
    if effect.test == MCNEMAR:
        return f"{points(effect.difference)} points, p = {effect.p_value:.3g} after Holm"
    return f"{points(effect.difference)} points, 95% CI {points(effect.ci_low)} to {points(effect.ci_high)}"


def _sizing(effect: Effect) -> str:
    """For a difference not detected: what this sweep could have detected, and the runs needed."""
    if effect.detectable is None:
        return ""
    if effect.detectable >= 1:  # a difference of more than 100 points does not exist: say so
        text = f"; with {runs_text(effect.runs)} this sweep could not detect even a 100-point difference"
    else:
        text = f"; this sweep could detect about {effect.detectable * 100:.2f} points"
    if effect.runs_needed is None:
        return text
    if effect.runs_needed > MAX_RUNS_NEEDED:
        return (
            text
            + f"; {points(effect.difference)} is too small beside the spread between runs for even {MAX_RUNS_NEEDED:,} runs"
        )
    return text + f"; about {effect.runs_needed} runs would detect {points(effect.difference)}"


def _effect_text(effect: Effect, label: str) -> str:
    if effect.verdict == NOT_DETECTED:
        return f"{label} ({_numbers(effect)}{_sizing(effect)})"
    return f"{label} ({_numbers(effect)})"


def _grouped(effects: Sequence[Effect], label_of) -> str:
    """ "better at A (…) and B (…); worse at C (…); not detected with 3 runs at D (…)"."""
    clauses = []
    for verdict in ("better", "worse", NOT_DETECTED):
        chosen = [effect for effect in effects if effect.verdict == verdict]
        if not chosen:
            continue
        runs = {effect.runs for effect in chosen}
        lead = f"not detected with {runs_text(runs.pop())}" if verdict == NOT_DETECTED and len(runs) == 1 else verdict
        texts = [_effect_text(effect, label_of(effect)) for effect in chosen]
        clauses.append(f"{lead} at {', '.join(texts[:-1]) + ' and ' if len(texts) > 1 else ''}{texts[-1]}")
    return "; ".join(clauses)


def factor_sentence(finding: FactorFinding, reference: str) -> str:
    runs = {effect.runs for effect in finding.effects}
    each = f", {runs_text(runs.pop())} each" if len(runs) == 1 else ""
    body = _grouped(finding.effects, lambda effect: value_text(finding.factor, effect.value))
    reference_value = value_text(finding.factor, finding.reference_value)
    return f"{FACTOR_WORDS[finding.factor][0]} (against {reference}, {reference_value}{each}): {body}."


def best_sentences(best: BestFinding) -> list[str]:
    lines = [
        f"The best is {best.name}, chosen by mean validation accuracy ({percent(best.val_accuracy)}), never by "
        f"test accuracy; its mean test accuracy is {percent(best.test_accuracy)} over {runs_text(best.runs)}."
    ]
    for effect in best.higher_on_test:
        against = (
            f"its difference from the best was not detected with {runs_text(effect.runs)} ({_numbers(effect)})"
            if effect.verdict == NOT_DETECTED
            else f"it is {effect.verdict} than the best on the test digits ({_numbers(effect)})"
        )
        lines.append(
            f"{effect.name} has a higher mean test accuracy ({percent(effect.test_accuracy)}) but a lower "
            f"validation accuracy, so it is not the best; {against}."
        )
    return lines


def finding_sentences(findings: Findings) -> list[str]:
    """The findings as sentences, in the order a reader wants them: the best, each factor, the
    configurations that vary several fields, the unfinished, and how sure the verdicts are."""
    lines = best_sentences(findings.best) if findings.best else []
    reference = findings.reference
    lines += [factor_sentence(finding, reference) for finding in findings.factors]
    if findings.others:
        lines.append(
            f"Varying several fields at once, against {reference}: "
            f"{_grouped(findings.others, lambda effect: effect.name)}."
        )
    if reference is None:
        lines.append("No reference configuration finished, so no factor could be judged against it.")
    lines += [f"{name} {status}: it is left out of the comparisons." for name, status in findings.unfinished]
    return lines + _how_sure(findings)


def _how_sure(findings: Findings) -> list[str]:
    if not findings.comparisons:
        return []
    lines = [
        f"How sure: each verdict is a test at 5% after Holm's correction over the run's {findings.comparisons} "
        f'comparisons; "not detected" means this sweep could not tell with its runs, not that there is no '
        "effect."
    ]
    if PAIRED_T in findings.tests:
        lines[0] += (
            f" The verdicts come from the paired t-test over seeds; detectable differences and runs needed are "
            f"sized for it at {POWER:.0%} power and at the strictest level of the correction "
            f"({findings.strictest_alpha:.2g}). A 95% interval is for its comparison alone, so one that excludes "
            'zero can still be "not detected" once the run\'s comparisons are corrected together.'
        )
    if MCNEMAR in findings.tests:
        lines.append(
            "With one run each, a verdict (McNemar's test on the same test digits) compares two trained models, "
            "not two configurations: another seed may reverse it, and one run measures no spread between runs, "
            "so nothing says how many runs a question needs. Train 3 runs or more (--repeats 3) to compare configurations."
        )
    return lines


def search_sentences(finding: SearchFinding) -> list[str]:
    """A search in three sentences: what it did, the parameters that mattered most, and whether the
    verification on fresh seeds confirmed its best (whose search score is never given as a result)."""
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
    return lines + _verification_sentences(finding)


def _verification_sentences(finding: SearchFinding) -> list[str]:
    if finding.best is None:
        return ["No candidate of the search trained to its last epoch, so none was verified."]
    chosen = (
        f"The search's best by validation accuracy was {finding.best} ({finding.best_search_val_accuracy:.4f} "
        "during the search: it was chosen because it was high, so that score is not a result)"
    )
    if finding.best_status is None:
        return [f"{chosen}; it has not been trained again on fresh seeds in this run folder, so nothing confirms it."]
    if finding.best_test_accuracy is None:
        return [
            f"{chosen}; trained again on fresh seeds, it {finding.best_status}, so the verification did not confirm it."
        ]
    lines = [
        f"{chosen}. Trained again on fresh seeds, its mean test accuracy is {percent(finding.best_test_accuracy)} "
        f"over {runs_text(finding.best_runs)}, rank {finding.best_rank} of {finding.ranked} in the verified "
        f"leaderboard{_against_reference(finding)}."
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
            f"seeds is {finding.verified_best}{against}."
        )
    return lines


def _verdict_phrase(effect: Effect) -> str:
    """ "worse (-0.30 points, 95% CI ...)", "not detectably different with 3 runs (...)"."""
    if effect.verdict == NOT_DETECTED:
        return f"not detectably different with {runs_text(effect.runs)} ({_numbers(effect)}{_sizing(effect)})"
    return f"{effect.verdict} ({_numbers(effect)})"


def _against_reference(finding: SearchFinding) -> str:
    effect = finding.vs_reference
    if effect is None or effect.verdict is None:
        return ""
    if effect.verdict == "reference":
        return "; it is the reference"
    return f"; against the reference, {finding.reference}, it is {_verdict_phrase(effect)}"
