"""ANLS (DocVQA) as an `evaluate` module: mean over questions of the best 1 - normalized
Levenshtein distance to any gold answer, 0 below the 0.5 threshold (evalkit.metrics.anls)."""
import datasets
import evaluate

from evalkit.metrics.anls import anls


class Anls(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="Mathew et al., DocVQA, WACV 2021",
            inputs_description="predictions: list of str; references: list of lists of gold answers",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references, threshold: float = 0.5):
        scores = [anls(p, r, threshold) for p, r in zip(predictions, references)]
        return {"anls": sum(scores) / len(scores) if scores else float("nan")}
