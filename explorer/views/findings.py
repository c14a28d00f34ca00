"""The findings in plain language, as a teacher would write them: the bottom line first (what
mattered most against the reference), why the best is the best, one short sentence per factor the
sweep varied (what was better, worse or not detected, in percentage points), the configurations
that vary several fields, those that did not finish, and, once, how sure the verdicts are. No
sentence runs past `MAX_SENTENCE` characters: a list too long for one is counted instead.

The numbers behind the sentences (each difference, its 95% interval, Holm-corrected p, the test,
the runs, the difference the sweep could detect and the runs a difference needs) are not in them:
`number_rows` gives them as a table, one row per comparison with the reference, for `findings.json`
and the report. Every number is one of `summary.json`'s, in points (0.0052 reads "+0.52").

"Not detected" is never said as "no effect": a sweep that cannot tell two configurations apart has
not shown that they are the same. Two that gave the same answers on every run are "identical".
"""

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from explorer.analysis.comparisons import BLOCK_T, MCNEMAR, NOT_DETECTED, PAIRED_T
from explorer.analysis.findings import BestFinding, Effect, FactorFinding, Findings
from explorer.config.defaults import DEFAULT_REPEATS
from explorer.views.tables import named

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


MAX_SENTENCE = 400  # characters: a sentence longer than this is a table in disguise

OTHERS = "Other (several fields)"  # the group of the configurations that vary several fields at once

# How the how-sure sentence names a test (`comparisons`' constants); another test is named as
# `_test_words` says, by its own name.
TEST_WORDS = {
    BLOCK_T: "a two-way t-test over the seeds (what a seed does to every network removed, each "
    "configuration with its own spread between runs)",
    PAIRED_T: "a paired t-test over the seeds both ran",
    MCNEMAR: "McNemar's test on the same test digits, which with one run compares two trained models, not "
    f"two configurations (--repeats {DEFAULT_REPEATS}, the default, compares configurations)",
}

# How a comparison with an anchor reads: its kind (`kind`) -> the words after the values.
KIND_WORDS = {
    "better": "better",
    "worse": "worse",
    NOT_DETECTED: "not detectably different",
    "identical": "gave identical results on every run",
    "not compared": "not compared (no seed in common)",
}

NoNetworks: Mapping[str, str] = MappingProxyType({})  # no search candidate to describe


def _test_words(test: str) -> str:
    return TEST_WORDS.get(test, f"a test over the seeds both ran ({test})")


def identical(effect: Effect) -> bool:
    """Whether the two configurations gave the same accuracy on every run: no difference and no
    spread, so this sweep could detect any difference at all (`detectable` is 0)."""
    no_spread = effect.detectable == 0 or (effect.ci_low == 0 and effect.ci_high == 0)
    return effect.difference == 0 and no_spread


def kind(effect: Effect) -> str:
    """ "better", "worse", "not detected", "identical", or "not compared"."""
    if effect.verdict in ("better", "worse"):
        return effect.verdict
    if effect.verdict == NOT_DETECTED:
        return "identical" if identical(effect) else NOT_DETECTED
    return "not compared"


def listed(texts: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return ", ".join(texts[:-1]) + " and " + texts[-1] if len(texts) > 1 else "".join(texts)


def values_text(factor: str, values: Sequence[object]) -> str:
    """Several values of a factor in words, the unit said once: "32 and 64 units", "2 and 3 hidden
    layers"; values that read "on" or "off" each in their own word."""
    words = [value_text(factor, value) for value in values]
    template = FACTOR_WORDS[factor][1]
    if len(values) == 1 or template == "{}" or any(word in ("on", "off") for word in words):
        return listed(words)
    return template.format(listed([str(value) for value in values])).replace("(s)", "s")


Labeller = Callable[[Sequence[Effect]], str]


def _clauses(effects: Sequence[Effect], label: Labeller) -> list[str]:
    """ "32 and 64 units were worse (-1.05, -0.40 points)", "512 units better (+0.62)": one clause
    per kind, in the order the kinds first appear, "points" said once."""
    kinds = list(dict.fromkeys(kind(effect) for effect in effects))
    clauses, said_points = [], False
    for index, each in enumerate(kinds):
        chosen = [effect for effect in effects if kind(effect) == each]
        verb = ("were " if len(chosen) > 1 else "was ") if index == 0 and each != "identical" else ""
        clause = f"{label(chosen)} {verb}{KIND_WORDS[each]}"
        if each not in ("identical", "not compared"):
            clause += f" ({', '.join(points(effect.difference) for effect in chosen)}"
            clause += ")" if said_points else " points)"
            said_points = True
        clauses.append(clause)
    return clauses


def _counted(lead: str, effects: Sequence[Effect], label: Callable[[Effect], str], against: str) -> str:
    """A list too long for one sentence, counted: how many of each kind, and the largest of each
    direction named."""
    parts = []
    for each in KIND_WORDS:
        chosen = [effect for effect in effects if kind(effect) == each]
        if not chosen:
            continue
        part = f"{len(chosen)} {KIND_WORDS[each]}"
        if each in ("better", "worse"):
            largest = max(chosen, key=lambda effect: abs(effect.difference))
            part += f" (most: {points(largest.difference)} points, {label(largest)})"
        parts.append(part)
    sentence = f"{lead}: of {len(effects)}, {', '.join(parts)}; {against}; the report and findings.json give each."
    if len(sentence) > MAX_SENTENCE:  # even the largest ones' names are too long: counts alone
        parts = [f"{sum(kind(effect) == each for effect in effects)} {words}" for each, words in KIND_WORDS.items()
                 if any(kind(effect) == each for effect in effects)]  # fmt: skip
        sentence = f"{lead}: of {len(effects)}, {', '.join(parts)}; {against}; the report and findings.json give each."
    return sentence


def factor_sentence(finding: FactorFinding) -> str:
    """ "Width: 32 and 64 units were worse (-1.05, -0.40 points), 512 units better (+0.62), 256
    units not detectably different (+0.35); against 128 units." """
    factor = finding.factor
    name = FACTOR_WORDS[factor][0]
    against = f"against {value_text(factor, finding.reference_value)}"
    clauses = _clauses(finding.effects, lambda effects: values_text(factor, [effect.value for effect in effects]))
    sentence = f"{name}: {', '.join(clauses)}; {against}."
    if len(sentence) <= MAX_SENTENCE:
        return sentence
    return _counted(f"{name}, values", finding.effects, lambda effect: value_text(factor, effect.value), against)


def others_sentence(others: Sequence[Effect], reference: str, networks: Mapping[str, str] = NoNetworks) -> str:
    """ "Varying several fields at once: softmax_regression was worse (-5.10 points); against
    dense_128_relu." """
    lead = "Varying several fields at once"
    clauses = _clauses(others, lambda effects: listed([named(effect.name, networks) for effect in effects]))
    sentence = f"{lead}: {', '.join(clauses)}; against {reference}."
    if len(sentence) <= MAX_SENTENCE:
        return sentence
    return _counted(f"{lead}, configurations", others, lambda effect: effect.name, f"against {reference}")


def _labelled_effects(findings: Findings, networks: Mapping[str, str]) -> list[tuple[str, Effect]]:
    """Every comparison with the reference, with its label in a sentence of its own: "width 32
    units", "learning rate 0.01", or the configuration's name."""
    labelled = [(f"{FACTOR_WORDS[finding.factor][0].lower()} {value_text(finding.factor, effect.value)}", effect)
                for finding in findings.factors for effect in finding.effects]  # fmt: skip
    return labelled + [(named(effect.name, networks), effect) for effect in findings.others]


def _runs_each(effects: Sequence[Effect]) -> str:
    runs = sorted({effect.runs for effect in effects if effect.runs is not None})
    if not runs:
        return "its runs"
    return f"{runs_text(runs[0])} each" if len(runs) == 1 else f"{runs[0]} to {runs[-1]} runs each"


def bottom_line(findings: Findings, networks: Mapping[str, str] = NoNetworks) -> str | None:
    """What mattered most, in one sentence: the largest difference detected from the reference (and
    the largest in the other direction), or, plainly, that none was detected and with how many runs."""
    reference = findings.reference
    labelled = _labelled_effects(findings, networks)
    if reference is None or not labelled:
        return None
    detected = [(label, effect) for label, effect in labelled if effect.verdict in ("better", "worse")]
    if not detected:
        return (
            f"Bottom line: with {_runs_each([effect for _, effect in labelled])}, this sweep detected no difference "
            f"from the reference, {reference}, in any of its {len(labelled)} comparisons with it; that is not "
            "evidence that there is none."
        )
    label, top = max(detected, key=lambda pair: abs(pair[1].difference))
    sentence = (
        f"Bottom line: what mattered most against the reference, {reference}, was {label}, "
        f"{abs(top.difference) * 100:.2f} points {top.verdict}"
    )
    other = [(label, effect) for label, effect in detected if effect.verdict != top.verdict]
    if other:
        label, largest = max(other, key=lambda pair: abs(pair[1].difference))
        direction = "gain" if largest.verdict == "better" else "loss"
        sentence += f"; the largest {direction} was {label}, {points(largest.difference)} points"
    return sentence + "."


def best_sentences(best: BestFinding, networks: Mapping[str, str] = NoNetworks) -> list[str]:
    """Why the best is the best (validation, never test), and those that tested higher, at most two
    short sentences."""
    lines = [
        f"The best, by mean validation accuracy (never by test accuracy), is {named(best.name, networks)}: "
        f"{percent(best.val_accuracy)} validation, {percent(best.test_accuracy)} test over {runs_text(best.runs)}."
    ]
    higher = best.higher_on_test
    if not higher:
        return lines
    clauses = _clauses(higher, lambda effects: listed([named(effect.name, networks) for effect in effects]))
    subject = listed([named(effect.name, networks) for effect in higher])
    neither = "it is not the best" if len(higher) == 1 else f"{'neither' if len(higher) == 2 else 'none'} is the best"
    sentence = (
        f"{subject} scored higher on test but lower on validation, so {neither}; against the best, "
        f"{', '.join(clauses)}."
    )
    if len(sentence) > MAX_SENTENCE:
        sentence = (
            f"{len(higher)} configurations scored higher on test but lower on validation, so none is the best; the "
            "leaderboard's vs best column gives each against it."
        )
    return [*lines, sentence]


def unfinished_sentence(unfinished: Sequence[tuple[str, str]]) -> str | None:
    """ "broken failed: it is left out of the comparisons.", or all of them in one sentence."""
    if not unfinished:
        return None
    if len(unfinished) == 1:
        name, status = unfinished[0]
        return f"{name} {status}: it is left out of the comparisons."
    sentence = f"Left out of the comparisons, unfinished: {', '.join(f'{n} ({s})' for n, s in unfinished)}."
    if len(sentence) <= MAX_SENTENCE:
        return sentence
    statuses = {status: sum(each == status for _, each in unfinished) for _, status in unfinished}
    counted = ", ".join(f"{count} {status}" for status, count in statuses.items())
    return f"{len(unfinished)} configurations did not finish ({counted}); the leaderboard names them."


def how_sure(findings: Findings) -> str | None:
    """How sure the verdicts are, once: the test, the runs, Holm's correction over the run's
    comparisons, and that "not detected" is not "no effect"."""
    if not findings.comparisons:
        return None
    effects = [effect for _, effect in _labelled_effects(findings, NoNetworks)]
    effects += list(findings.best.higher_on_test) if findings.best else []
    tests = " or ".join(_test_words(test) for test in findings.tests) or "a test over the runs"
    return (
        f"How sure: with {_runs_each(effects)}, each verdict is {tests}, at 5% after Holm's correction over "
        f'the run\'s {findings.comparisons} comparisons; "not detected" means this sweep could not tell, not '
        "that there is no effect."
    )


def finding_sentences(findings: Findings, networks: Mapping[str, str] = NoNetworks) -> list[str]:
    """The findings as sentences, in the order a reader wants them: the bottom line, the best, each
    factor, the configurations that vary several fields, the unfinished, and how sure.

    Args:
        findings: what the sweep found (`analysis.findings.find`).
        networks: search candidate -> its network in short (`tables.candidate_networks`), said
            after its name wherever it appears.
    """
    lines = [bottom_line(findings, networks)]
    lines += best_sentences(findings.best, networks) if findings.best else []
    reference = findings.reference
    lines += [factor_sentence(finding) for finding in findings.factors]
    if findings.others:
        lines.append(others_sentence(findings.others, reference, networks))
    if reference is None:
        lines.append("No reference configuration finished, so no factor could be judged against it.")
    lines += [unfinished_sentence(findings.unfinished), how_sure(findings)]
    return [line for line in lines if line is not None]


def _in_points(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100


def number_row(group: str, label: str, effect: Effect) -> dict:
    """One comparison with the reference, in points (`number_rows`)."""
    row = {
        "group": group, "label": label, "configuration": effect.name, "verdict": kind(effect),
        "difference_points": _in_points(effect.difference), "ci_low_points": _in_points(effect.ci_low),
        "ci_high_points": _in_points(effect.ci_high), "p_holm": effect.p_value, "test": effect.test,
        "runs": effect.runs, "detectable_points": _in_points(effect.detectable), "runs_needed": effect.runs_needed,
    }  # fmt: skip
    return row


def number_rows(findings: Findings, networks: Mapping[str, str] = NoNetworks) -> list[dict]:
    """The numbers behind the sentences, one row per comparison with the reference, grouped by
    factor (then `OTHERS`): the difference, its 95% interval and the difference this sweep could
    detect in points, Holm-corrected p, the test, the runs, and about how many runs would detect the
    difference (for one not detected). `verdict` is `kind`'s ("identical" included)."""
    rows = [
        number_row(FACTOR_WORDS[finding.factor][0], value_text(finding.factor, effect.value), effect)
        for finding in findings.factors
        for effect in finding.effects
    ]
    return rows + [number_row(OTHERS, named(effect.name, networks), effect) for effect in findings.others]
