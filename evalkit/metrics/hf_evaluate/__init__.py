"""evalkit's metrics as local `evaluate` modules, for scoring outside evalkit:

    import evaluate
    from evalkit.metrics.hf_evaluate import module_path
    anls = evaluate.load(module_path("anls"))
    anls.compute(predictions=["total due"], references=[["Total due", "total"]])

Each module wraps the same plain function evalkit uses (evalkit.metrics.*), so the numbers agree.
"""
from evalkit.resources import shipped_path

MODULES = ("anls", "vqa_accuracy")


def module_path(name: str) -> str:
    if name not in MODULES:
        raise ValueError(f"no evaluate module {name!r}; available: {', '.join(MODULES)}")
    return str(shipped_path(__name__, name))
