"""Models and the engines that run them: the local transformers engine (`local`) with its batching
(`scoring`, `memory`) and role switching (`role_weights`), an OpenAI-compatible server (`remote`),
vLLM (`vllm`), and `tunegate serve` (`serve`)."""
