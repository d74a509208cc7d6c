"""Bias audit: generate descriptions of people with three prompts, then measure how the
generations differ across gender and ethnicity groups (the card's TF-IDF term variance as a
view; a length-stratified CMH test of every frequent term with effect sizes), how toxic they
are (with a tested group difference and a check of the classifier), and how well the model
classifies FairFace faces (with the bucket spread set against sampling noise).

Modules, one job each:
  prompts      the three prompts of the Idefics2 model card's bias evaluation
  sources      the two datasets (FairFace, Stable Bias): hub ids, group columns, label names
  generations  generation rows: our JSONL, and import of published wide datasets
  appearance   the documented appearance-word list for optional masking
  tfidf        per-group mean TF-IDF, the variance ranking (corrected and legacy), per-axis analysis
  significance stratified CMH test of term presence over all terms at once, Mantel-Haenszel
               odds ratios, Wilson intervals, Benjamini-Hochberg q-values
  toxicity     toxicity classifiers (transformers model, offline default), the identity-word
               check, aggregation and the per-slice permutation test
  fairface     FairFace classification accuracy by gender x race bucket, from a run folder
  analysis     ties the above into one JSON-able AuditAnalysis (audit.json)
  figures      term bars, toxicity bars, FairFace bucket heat maps (PNG data URIs)
  report       the self-contained HTML report (templates/audit.html.j2)
  runner       AuditConfig and run_audit(): generation (thin) + analysis + report
(The `evalkit audit` subcommand's parser is in evalkit/cli/audit.py, with every other command.)
"""
