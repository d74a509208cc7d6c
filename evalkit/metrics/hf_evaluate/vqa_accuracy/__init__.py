"""The VQA accuracy `evaluate` module's folder (evaluate.load reads vqa_accuracy.py in it)."""
