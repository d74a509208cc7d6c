"""The task interface: one TaskSpec per plugin, the name written once, defaults for what a
plugin does not change, plugins written before TaskSpec still working, and the judge handed to
scoring as an argument."""
import pytest

from evalkit.errors import EvalkitError, SampleError
from evalkit.registry import Registry
from evalkit.task import SHORT_ANSWER_PROMPT, Task, TaskSpec
from evalkit.types import Response, Score


def _registry() -> Registry:
    return Registry("task", "evalkit.tasks", "evalkit.no-such-group")


class Echo(Task):
    spec = TaskSpec(name="echo", hub_id="org/echo", id_field="qid", image_columns=("picture",),
                    post_prompt=SHORT_ANSWER_PROMPT, max_new_tokens=7, metric="exact",
                    judge_prompt_name="echo-judge-v1")

    def score_text(self, row, prediction, judge=None):
        said = judge("q", prediction) if judge is not None else prediction
        return Score(float(said in self.gold(row)), extras={"judged": judge is not None})


def test_spec_fields_are_the_class_attributes_and_judges_follows_the_prompt_name():
    assert (Echo.name, Echo.hub_id, Echo.split, Echo.max_new_tokens, Echo.metric) == \
        ("echo", "org/echo", "validation", 7, "exact")
    assert Echo.judges is True and Echo.judge_prompt_name == "echo-judge-v1"
    assert Echo().describe()["name"] == "echo" and "reference" not in Echo().describe()


def test_bare_register_takes_the_spec_name():
    reg = _registry()
    reg._discovered = True  # no package scan: only what this test registers
    assert reg.register(Echo) is Echo
    assert reg.names() == ["echo"] and reg.get("echo") is Echo


def test_register_without_any_name_is_refused_in_one_line():
    class Nameless:
        pass

    with pytest.raises(EvalkitError) as e:
        _registry().register(Nameless)
    assert "registered without a name" in str(e.value) and "\n" not in str(e.value)


def test_a_bad_name_is_refused():
    with pytest.raises(EvalkitError, match="must be a non-empty name without spaces or slashes"):
        TaskSpec(name="my task", hub_id="x", id_field="id", metric="m")


def test_default_request_is_question_then_post_prompt_with_the_first_image_column():
    [req] = Echo().build_requests({"question": "What colour?", "picture": "IMG"}, "u1")
    assert (req.uid, req.text, req.images, req.gen.max_new_tokens) == \
        ("u1", "What colour?" + SHORT_ANSWER_PROMPT, ["IMG"], 7)
    with pytest.raises(SampleError, match="empty question"):
        Echo().build_requests({"question": " ", "picture": "IMG"}, "u2")


def test_the_judge_reaches_scoring_as_an_argument_only_when_there_is_one():
    row = {"answers": ["blue"]}
    task = Echo()
    text, plain = task.score(row, [Response("u", text="it is blue")])
    assert (text, plain.value, plain.extras["judged"]) == ("it is blue", 0.0, False)
    _, judged = task.score(row, [Response("u", text="it is blue")], judge=lambda q, r: "blue")
    assert (judged.value, judged.extras["judged"]) == (1.0, True)
    assert "judge" not in vars(task)


def test_a_plugin_written_with_attributes_still_gets_a_spec():
    class Legacy(Task):
        name = "legacy"
        hub_id = "org/legacy"
        id_field = "id"
        metric = "acc"
        max_new_tokens = 5
        judges = True

        def score_text(self, row, prediction):  # no judge argument: scoring without one still works
            return Score(1.0)

    assert isinstance(Legacy.spec, TaskSpec)
    assert (Legacy.spec.name, Legacy.spec.hub_id, Legacy.spec.max_new_tokens) == ("legacy", "org/legacy", 5)
    assert Legacy.judges is True
    assert Legacy().score({}, [Response("u", text="x")])[1].value == 1.0
    reg = _registry()
    reg._discovered = True
    reg.register("legacy")(Legacy)
    assert reg.get("legacy") is Legacy
