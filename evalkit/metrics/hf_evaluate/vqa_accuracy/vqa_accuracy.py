"""VQA accuracy (VQAv2, TextVQA) as an `evaluate` module: the official answer normalization and
the mean over the 10 leave-one-out subsets of min(1, matches / 3) (evalkit.metrics.vqa).
`scheme`: "vqav2" (2017 vqaEval.py, default), "vqav2_2021" or "textvqa"."""
import datasets
import evaluate

from evalkit.metrics.vqa import vqa_accuracy


class VqaAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="Goyal et al., VQAv2, CVPR 2017",
            inputs_description="predictions: list of str; references: list of the 10 gold answers each",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references, scheme: str = "vqav2"):
        scores = [vqa_accuracy(p, r, scheme=scheme) for p, r in zip(predictions, references)]
        return {"vqa_accuracy": sum(scores) / len(scores) if scores else float("nan")}
