"""Result files: results.json's versioned schema, samples.jsonl, run folders."""
