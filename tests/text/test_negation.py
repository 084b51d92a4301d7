from __future__ import annotations

import dataclasses

import pytest

from kgclip.errors import ConfigError
from kgclip.text.negation import ContextAnnotator, NegationConfig, find_cues


@dataclasses.dataclass(frozen=True)
class Span:
    start: int
    end: int
    negated: bool = False
    uncertain: bool = False
    historical: bool = False
    negation_cue: str = ""


def flags_of(text: str, *terms: str, annotator: ContextAnnotator | None = None) -> dict[str, tuple]:
    annotator = annotator or ContextAnnotator()
    spans = [(text.index(t), text.index(t) + len(t)) for t in terms]
    return {t: f[:3] for t, f in zip(terms, annotator.flags(text, spans))}


NEG, UNC, HIST, NONE = (True, False, False), (False, True, False), (False, False, True), (False, False, False)


@pytest.mark.parametrize("text,term,expected", [
    ("No pleural effusion.", "pleural effusion", NEG),
    ("There is no evidence of pneumothorax.", "pneumothorax", NEG),
    ("Without focal consolidation.", "consolidation", NEG),
    ("Pneumothorax is not seen.", "Pneumothorax", NEG),
    ("The lungs are clear.", "lungs", NEG),
    ("Heart size within normal limits.", "Heart", NEG),
    ("Normal heart size.", "heart", NEG),
    ("Negative for pneumonia.", "pneumonia", NEG),
    ("Effusion has resolved.", "Effusion", NEG),
    ("Findings may represent atelectasis.", "atelectasis", UNC),
    ("Possible left lower lobe pneumonia.", "pneumonia", UNC),
    ("Pneumonia cannot be excluded.", "Pneumonia", UNC),
    ("Cannot exclude a small effusion.", "effusion", UNC),
    ("Opacity suggestive of pneumonia.", "pneumonia", UNC),
    ("History of lung cancer.", "lung cancer", HIST),
    ("Old healed rib fracture.", "rib fracture", HIST),
    ("Status post sternotomy.", "sternotomy", HIST),
    ("Cardiomegaly.", "Cardiomegaly", NONE),
    ("There is a right pleural effusion.", "pleural effusion", NONE),
])
def test_context_categories(text: str, term: str, expected: tuple) -> None:
    assert flags_of(text, term)[term] == expected


def test_pseudo_negations_leave_the_finding_affirmed() -> None:
    assert flags_of("No increase in cardiomegaly.", "cardiomegaly")["cardiomegaly"] == NONE
    assert flags_of("No change in the small effusion.", "effusion")["effusion"] == NONE
    assert flags_of("Not only atelectasis is present.", "atelectasis")["atelectasis"] == NONE
    assert flags_of("No significant interval change in the nodule.", "nodule")["nodule"] == NONE


def test_terminators_and_sentence_boundaries_end_scope() -> None:
    text = "No pneumothorax, but there is a large pleural effusion."
    f = flags_of(text, "pneumothorax", "pleural effusion")
    assert f["pneumothorax"] == NEG and f["pleural effusion"] == NONE
    text = "No pneumothorax. Pleural effusion on the right."
    assert flags_of(text, "Pleural effusion")["Pleural effusion"] == NONE
    text = "No effusion, however consolidation is present."
    assert flags_of(text, "consolidation")["consolidation"] == NONE


def test_list_after_one_negation_is_all_negated() -> None:
    text = "There is no pleural effusion, pneumothorax, or focal airspace consolidation."
    f = flags_of(text, "pleural effusion", "pneumothorax", "consolidation")
    assert all(v == NEG for v in f.values())


def test_scope_limit() -> None:
    words = " ".join(f"w{i}" for i in range(40))
    text = f"No {words} effusion."
    assert flags_of(text, "effusion")["effusion"] == NONE
    config = NegationConfig(max_scope=50)
    assert flags_of(text, "effusion", annotator=ContextAnnotator(config))["effusion"] == NEG


def test_decimal_point_is_not_a_sentence_break() -> None:
    assert flags_of("No 2.5 cm nodule.", "nodule")["nodule"] == NEG


def test_cues_and_annotate_on_dataclasses() -> None:
    cues = find_cues("No effusion; may represent atelectasis.")
    assert [(c.phrase, c.category) for c in cues][:2] == [("no", "negated"), ("may represent", "uncertain")]
    text = "No effusion."
    (out,) = ContextAnnotator().annotate(text, [Span(3, 11)])
    assert out.negated and out.negation_cue == "no"


def test_extra_cues_and_bad_config() -> None:
    annotator = ContextAnnotator(NegationConfig(extra_cues=("negated:forward:nada de",)))
    assert flags_of("nada de effusion", "effusion", annotator=annotator)["effusion"] == NEG
    with pytest.raises(ConfigError):
        NegationConfig(extra_cues=("sideways:no",))
    with pytest.raises(ConfigError):
        NegationConfig(max_scope=0)
    assert NegationConfig.from_dict(NegationConfig(max_scope=7).to_dict()).max_scope == 7


def test_normal_descriptors_can_be_switched_off() -> None:
    annotator = ContextAnnotator(NegationConfig(normal_descriptors_negate=False))
    assert flags_of("The lungs are clear.", "lungs", annotator=annotator)["lungs"] == NONE


def test_long_text_without_sentence_breaks_is_bounded() -> None:
    text = "no effusion " * 9000  # ~100k characters, one sentence, thousands of cues
    spans = [(i * 12 + 3, i * 12 + 11) for i in range(9000)]
    flags = ContextAnnotator().flags(text, spans)
    assert len(flags) == 9000 and all(f[0] for f in flags)


def test_empty_inputs() -> None:
    assert ContextAnnotator().flags("", []) == []
    assert ContextAnnotator().flags("nothing here", [(0, 7)]) == [(False, False, False, "")]
    assert find_cues("") == []


def test_module_level_flags_for_spans_found_elsewhere() -> None:
    from kgclip.text.negation import flags

    text = "No pleural effusion. Possible pneumonia. Cardiomegaly."
    spans = [(text.index("pleural"), text.index(".")), (text.index("pneumonia"), text.index("pneumonia") + 9),
             (text.index("Cardio"), len(text) - 1)]
    assert flags(text, spans) == [(True, False, False, "no"), (False, True, False, ""), (False, False, False, "")]
    assert flags(text, []) == []
