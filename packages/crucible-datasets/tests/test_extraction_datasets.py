"""Answer extraction on model-like outputs built from the real GSM8K and MMLU test sets.

GSM8K: every one of the 1,319 test solutions, rewritten the ways models end a worked answer
("The answer is N.", the issue's "The answer is 25 - 7 = 18." template, `\\boxed{N}`, "$1,234",
a remark after the answer, a wrong final answer), scored by `evaluate` and by
lm-evaluation-harness's two GSM8K filters as its task config defines them (`gsm8k.yaml`,
version 3.0: "strict-match" and "flexible-extract", then `exact_match` with its
`regexes_to_ignore`). Wherever lm-evaluation-harness reads the answer right, crucible does too.

MMLU: every test question (14,042), answered in the phrasings of the issue and more, with the
gold letter and the choice's own text (which holds articles, capital letters and "A and B").
"""

from __future__ import annotations

import re
from pathlib import Path

import crucible_datasets as cd

# --- lm-evaluation-harness's gsm8k task, from its config (lm_eval/tasks/gsm8k/gsm8k.yaml) -----
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")  # strict-match: the first "#### N"
FLEXIBLE = re.compile(
    r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
)  # flexible-extract: the last number
IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")  # exact_match's regexes_to_ignore


def _lm_eval_filter(regex: re.Pattern[str], select: int, text: str) -> str:
    found = regex.findall(text)
    if not found:
        return "[invalid]"
    match = found[select]
    if isinstance(match, tuple):
        match = next(m for m in match if m)
    return str(match).strip()


def _lm_eval_exact_match(prediction: str, target: str) -> bool:
    for pattern in IGNORE:
        prediction = re.sub(pattern, "", prediction)
        target = re.sub(pattern, "", target)
    return prediction.lower() == target.lower()  # ignore_case: true


def lm_eval_correct(output: str, target: str) -> dict[str, bool]:
    return {
        "strict": _lm_eval_exact_match(_lm_eval_filter(STRICT, 0, output), target),
        "flexible": _lm_eval_exact_match(_lm_eval_filter(FLEXIBLE, -1, output), target),
    }


# ------------------------------------------------------------------------------------------------


def _gsm8k_outputs(item: cd.Item) -> dict[str, str]:
    solution = str(item.metadata["solution"])
    n = str(item.expected)
    steps = re.sub(r"<<[^>]*>>", "", solution).rsplit("\n####", 1)[0]
    outputs = {
        "gold_solution": solution,
        "answer_is": f"{steps}\nThe answer is {n}.",
        "boxed": f"{steps}\nSo the final answer is \\boxed{{{n}}}.",
        "boxed_in_math": f"{steps}\nSo the final answer is $\\boxed{{{n}}}$.",
        "currency": f"{steps}\nThe answer is ${int(n):,}." if n.isdigit() else None,
        "remark_after": f"{steps}\nThe answer is {n}. I checked it 2 times.",
        "wrong": f"{steps}\nThe answer is {int(n) + 1}.",
    }
    calcs = re.findall(r"<<([^=>]*)=([^>]*)>>", solution)
    if (
        calcs and calcs[-1][1] == n
    ):  # "The answer is 25 - 7 = 18.": the template
        outputs["expression"] = f"{steps}\nThe answer is {calcs[-1][0]} = {n}."
    return {k: v for k, v in outputs.items() if v is not None}


def test_gsm8k_outputs_against_lm_evaluation_harness(data_dir: Path) -> None:
    ds = cd.load("gsm8k", source=data_dir / "gsm8k")
    assert len(ds) == 1319
    outputs = {item.id: _gsm8k_outputs(item) for item in ds}
    kinds = sorted({k for o in outputs.values() for k in o})
    ours: dict[str, list[bool]] = {}
    theirs: dict[str, list[bool]] = {}
    disagreements = []
    for kind in kinds:
        preds = {i: o[kind] for i, o in outputs.items() if kind in o}
        subset = ds.with_items([item for item in ds if item.id in preds])
        result = cd.evaluate(preds, dataset=subset)
        ours[kind] = [r.scores["exact_match"] == 1.0 for r in result.item_results]
        theirs[kind] = []
        for item, mine in zip(subset, ours[kind], strict=True):
            ref = lm_eval_correct(preds[item.id], str(item.metadata["solution"]))
            theirs[kind].append(ref["strict"] or ref["flexible"])
            if (ref["strict"] or ref["flexible"]) and not mine:
                disagreements.append((kind, item.id, preds[item.id][-80:]))
    # lm-evaluation-harness never reads an answer right that crucible reads wrong
    assert disagreements == []
    right = {k: sum(v) for k, v in ours.items()}
    sizes = {k: len(v) for k, v in ours.items()}
    assert right == {k: (0 if k == "wrong" else sizes[k]) for k in kinds}
    assert sizes["expression"] > 1000
    assert sizes["currency"] == sum(str(i.expected).isdigit() for i in ds)
    # lm-evaluation-harness reads them right except after a later number ("... 2 times.") and
    # in `$\boxed{N}$.`, where "$." is flexible-extract's last "number"
    assert {k: sum(v) for k, v in theirs.items()} == sizes | {
        "wrong": 0,
        "remark_after": sum(i.expected == "2" for i in ds),
        "boxed_in_math": 0,
    }


CHOICE_TEMPLATES = {
    "answer_is_paren": "The answer is ({L}).",
    "letter_then_text": "{L}. {T}",
    "text_then_answer": "Looking at the options, {T} fits best, so the answer is {L}.",
    "negated_first": "It is not {W}. It is {L}.",
    "boxed": "\\boxed{{{L}}}",
    "go_with": "I'd go with {L}",
    "answer_dash": "Answer - {L}",
    "article_then_letter": "The answer is a tough one, but I think {L}.",
    "bold": "**{L}**",
    "lower_case": "answer: {l}",
}
UNDECIDED = {
    "either": "Either {L} or {W}, I can't decide.",
    "both": "Both {L} and {W} seem plausible.",
}


def test_mmlu_outputs_on_the_whole_test_set(data_dir: Path) -> None:
    ds = cd.load("mmlu", split="test", source=data_dir / "mmlu")
    assert len(ds) == 14042
    wrong: dict[str, list[tuple[str, str, str | None]]] = {}
    for item in ds:
        letter = str(item.expected)
        other = "ABCD"[("ABCD".index(letter) + 1) % 4]
        text = str(item.input["choices"]["ABCD".index(letter)])
        fill = {"L": letter, "l": letter.lower(), "W": other, "T": text}
        for kind, template in (CHOICE_TEMPLATES | UNDECIDED).items():
            output = template.format(**fill)
            want = None if kind in UNDECIDED else letter
            got = cd.extract_choice(output)
            if got != want:
                wrong.setdefault(kind, []).append((item.id, output, got))
    assert {k: v[:3] for k, v in wrong.items()} == {}
