"""Model backends behind the Backend contract: transformers, OpenAI-compatible servers, vLLM."""
