"""What a model server's refusal means, in words a user can act on: the server's own text
mapped to the named errors of errors.py, and where each provider's URL is set."""

from __future__ import annotations

import re

from protocol.llm.errors import ContextOverflow, ModelError, ModelNotFound, ServerError


def how_to_start(provider: str, url: str) -> str:
    if provider == "ollama":
        return f"Start it with `ollama serve`, or set OLLAMA_HOST to where it runs (now {url})."
    if provider == "openai":
        return (
            "Start your OpenAI-compatible server (vLLM, llama.cpp server, LM Studio), "
            f"or set OPENAI_BASE_URL to where it runs (now {url})."
        )
    return f"Check your network and the Anthropic base URL ({url})."


# Where each provider's base URL is configured, and what to tell a user to fix.
URL_FIELD = {
    "ollama": "ollama_host",
    "openai": "openai_base_url",
    "anthropic": "anthropic_base_url",
}
URL_SETTING = {
    "ollama": "OLLAMA_HOST",
    "openai": "OPENAI_BASE_URL (it usually ends in /v1)",
    "anthropic": "the Anthropic base URL",
}


def client_error(
    status: int, detail: str, provider: str, model: str, role: str, where: str
) -> ModelError:
    """A 4xx answer (or an error inside a stream) as the error it is: a missing model, a
    wrong endpoint, a refused key, a prompt too long, or a refusal in the server's words."""
    text = detail.lower()
    if model.lower() in text or _MODEL_MISSING.search(text):
        fix = (
            f"run `ollama pull {model}`"
            if provider == "ollama"
            else f"check models.{role}.model (the server lists what it has)"
        )
        return ModelNotFound(f"model {model!r} is not available on {where}: {fix}")
    if status == 404:
        return ServerError(
            f"{where} has no such endpoint (404: {detail}): is it "
            f"really a {provider} server? Check {URL_SETTING[provider]}",
            status,
        )
    if status in (401, 403):
        key = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
        return ServerError(f"{where} refused the request ({status}): {detail}; check {key}", status)
    if any(words in text for words in _OVERFLOW_WORDS):
        return ContextOverflow(f"{where} says the prompt is too long: {detail}")
    return ServerError(f"{where} refused the request ({status}): {detail}", status)


_MODEL_MISSING = re.compile(r"model\W.{0,80}(not found|does not exist)|model_not_found")
_OVERFLOW_WORDS = (
    "context length",
    "context window",
    "context size",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)
