"""The LLM narrators' HTTP clients over real HTTP: documented requests, retries, errors, no key leaks."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.fakes.llm_servers import LlmServers

from opslens.errors import NarratorError
from opslens.report.narrators.base import ChatClient
from opslens.report.narrators.gemini import GeminiClient
from opslens.report.narrators.http import JsonPoster, retry_after_seconds
from opslens.report.narrators.ollama import OllamaClient
from opslens.report.narrators.openai import OpenAIClient

CANARY = "sk-canary-123456"
SYSTEM = "You write short operational reports."
USER = "Summarise: 3 anomalies on route 7."
ANSWER = "Three anomalies, all on route 7."
PROVIDERS = ["ollama", "gemini", "openai"]


@pytest.fixture
def llm() -> Iterator[LlmServers]:
    with LlmServers(answer=ANSWER) as server:
        yield server


def make(provider: str, base: str, sleeps: list[float] | None = None, **kw: Any) -> ChatClient:
    """A client of ``provider`` pointed at ``base`` (the loopback server's URL), keyed by CANARY."""
    sleep: Callable[[float], None] = (sleeps if sleeps is not None else []).append
    if provider == "ollama":
        return OllamaClient(base, "llama3.1", sleep=sleep, **kw)
    if provider == "gemini":
        return GeminiClient(
            kw.pop("api_key", CANARY), "gemini-2.0-flash", url=f"{base}/v1beta", sleep=sleep, **kw
        )
    return OpenAIClient(
        f"{base}/v1", "qwen2.5-7b", api_key=kw.pop("api_key", CANARY), sleep=sleep, **kw
    )


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text, text


# ---- a normal answer: the documented request ------------------------------------------------
def test_ollama_request_and_answer(llm: LlmServers) -> None:
    client = make("ollama", llm.url)
    assert isinstance(client, ChatClient) and client.name == "ollama"
    assert client.complete(SYSTEM, USER, temperature=0.3, max_tokens=321) == ANSWER
    (req,) = llm.requests
    assert (req.method, req.path, req.query) == ("POST", "/api/chat", {})
    assert req.headers["content-type"] == "application/json"
    assert req.body == {
        "model": "llama3.1",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        "stream": False,
        "options": {"temperature": 0.3, "num_predict": 321},
    }


def test_gemini_request_and_answer(llm: LlmServers) -> None:
    client = make("gemini", llm.url)
    assert isinstance(client, ChatClient) and client.name == "gemini"
    assert client.complete(SYSTEM, USER, temperature=0.3, max_tokens=321) == ANSWER  # 2 parts
    (req,) = llm.requests
    assert (req.method, req.path, req.query) == (
        "POST",
        "/v1beta/models/gemini-2.0-flash:generateContent",
        {},
    )
    assert req.headers["x-goog-api-key"] == CANARY and "authorization" not in req.headers
    assert req.body == {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": USER}]}],
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 321},
    }


def test_openai_request_and_answer(llm: LlmServers) -> None:
    client = make("openai", llm.url)
    assert isinstance(client, ChatClient) and client.name == "openai"
    assert client.complete(SYSTEM, USER, temperature=0.3, max_tokens=321) == ANSWER
    (req,) = llm.requests
    assert (req.method, req.path, req.query) == ("POST", "/v1/chat/completions", {})
    assert req.headers["authorization"] == f"Bearer {CANARY}"
    assert req.body == {
        "model": "qwen2.5-7b",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        "temperature": 0.3,
        "max_tokens": 321,
    }


def test_openai_without_key_sends_no_authorization(llm: LlmServers) -> None:
    client = OpenAIClient(f"{llm.url}/v1", "local", api_key=None)
    assert client.complete(SYSTEM, USER) == ANSWER
    (req,) = llm.requests
    assert "authorization" not in req.headers
    assert req.body["temperature"] == 0.2 and req.body["max_tokens"] == 800  # the defaults


@pytest.mark.parametrize("key", [None, "", "  "])
def test_gemini_needs_a_key(key: str | None) -> None:
    with pytest.raises(NarratorError, match="API key") as err:
        GeminiClient(key)
    assert err.value.fix is not None and "GEMINI_API_KEY" in err.value.fix


# ---- HTTP errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_names_provider_status_and_fix_without_retry(llm: LlmServers, provider: str) -> None:
    llm.fail_next("401", times=3)
    sleeps: list[float] = []
    with pytest.raises(NarratorError) as err:
        make(provider, llm.url, sleeps, retries=2).complete(SYSTEM, USER)
    message = str(err.value)
    assert provider in err.value.problem and "401" in err.value.problem
    assert "invalid API key" in err.value.problem  # the provider's own message
    assert err.value.fix
    if provider != "ollama":
        assert "API key" in err.value.fix
        assert ("GEMINI_API_KEY" if provider == "gemini" else "OPENAI_API_KEY") in err.value.fix
    assert len(llm.requests) == 1 and sleeps == []
    assert_no_canary(message)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_404_unknown_model_names_the_model(provider: str) -> None:
    with LlmServers(models={"other-model"}) as llm:
        with pytest.raises(NarratorError) as err:
            make(provider, llm.url).complete(SYSTEM, USER)
    assert "404" in err.value.problem and "not found" in err.value.problem
    assert err.value.fix is not None and "model name" in err.value.fix
    assert len(llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_waits_retry_after_then_succeeds(llm: LlmServers, provider: str) -> None:
    llm.fail_next("429")
    sleeps: list[float] = []
    assert make(provider, llm.url, sleeps).complete(SYSTEM, USER) == ANSWER
    assert [r.status for r in llm.requests] == [429, 200]
    assert sleeps == [1.0]  # Retry-After: 1, recorded, not slept


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_every_time_is_rate_limited(llm: LlmServers, provider: str) -> None:
    llm.fail_next("429", times=2)
    sleeps: list[float] = []
    with pytest.raises(NarratorError) as err:
        make(provider, llm.url, sleeps, retries=1).complete(SYSTEM, USER)
    assert "429" in err.value.problem and "rate limit reached" in err.value.problem
    assert err.value.fix is not None and "rate limit" in err.value.fix
    assert len(llm.requests) == 2 and sleeps == [1.0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500_twice_then_success_with_two_retries(llm: LlmServers, provider: str) -> None:
    llm.fail_next("500", times=2)
    sleeps: list[float] = []
    assert make(provider, llm.url, sleeps, retries=2).complete(SYSTEM, USER) == ANSWER
    assert [r.status for r in llm.requests] == [500, 500, 200]
    assert sleeps == [0.5, 1.0]  # exponential backoff without Retry-After


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500_without_retries_fails(llm: LlmServers, provider: str) -> None:
    llm.fail_next("500", times=2)
    with pytest.raises(NarratorError) as err:
        make(provider, llm.url, retries=0).complete(SYSTEM, USER)
    assert provider in err.value.problem and "500" in err.value.problem
    assert "an internal error has occurred" in err.value.problem
    assert err.value.fix is not None and "retry later" in err.value.fix
    assert len(llm.requests) == 1


# ---- timeouts and unreachable servers -------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout(llm: LlmServers, provider: str) -> None:
    llm.fail_next("slow")  # waits 1 s; the client gives up after 0.2 s
    with pytest.raises(NarratorError) as err:
        make(provider, llm.url, timeout=0.2, retries=0).complete(SYSTEM, USER)
    assert provider in err.value.problem and "timeout" in err.value.problem
    assert err.value.fix is not None and "report.timeout_seconds" in err.value.fix


def test_timeout_is_retried(llm: LlmServers) -> None:
    llm.fail_next("slow")
    sleeps: list[float] = []
    assert make("ollama", llm.url, sleeps, timeout=0.2, retries=1).complete(SYSTEM, USER) == ANSWER
    assert len(llm.requests) == 2 and sleeps == [0.5]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unreachable(provider: str) -> None:
    sleeps: list[float] = []
    client = make(provider, f"http://127.0.0.1:{free_port()}", sleeps, retries=1)
    with pytest.raises(NarratorError) as err:
        client.complete(SYSTEM, USER)
    assert provider in err.value.problem and "unreachable" in err.value.problem
    assert "127.0.0.1" in err.value.problem
    assert err.value.fix is not None and "check the URL" in err.value.fix
    assert sleeps == [0.5]  # connection errors are retried


# ---- bad answers ----------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("fault", "says"), [("empty", "empty answer"), ("truncated", "cut off")])
def test_empty_and_truncated_answers(llm: LlmServers, provider: str, fault: str, says: str) -> None:
    llm.fail_next(fault)
    with pytest.raises(NarratorError) as err:
        make(provider, llm.url).complete(SYSTEM, USER, max_tokens=50)
    assert provider in err.value.problem and says in err.value.problem
    if fault == "truncated":
        assert "max_tokens=50" in err.value.problem
    assert err.value.fix
    assert len(llm.requests) == 1  # a bad answer is not retried


@pytest.mark.parametrize(
    ("provider", "says"), [("gemini", "blocked (SAFETY)"), ("openai", "content_filter")]
)
def test_blocked_answers(llm: LlmServers, provider: str, says: str) -> None:
    llm.fail_next("blocked")
    with pytest.raises(NarratorError, match=r"rephrase") as err:
        make(provider, llm.url).complete(SYSTEM, USER)
    assert says in err.value.problem


def test_not_json_answer() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(NarratorError, match="not JSON") as err:
        OllamaClient(transport=transport).complete(SYSTEM, USER)
    assert "<html>hello</html>" in err.value.problem


# ---- the API key never leaks ----------------------------------------------------------------
@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_api_key_never_leaks(provider: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[NarratorError] = []
    with LlmServers(answer=ANSWER, api_key=CANARY) as llm:
        client = make(provider, llm.url, retries=1, timeout=0.2)
        for fault in ("429", "500", "slow"):  # retried failures: logged
            llm.fail_next(fault, times=2)
            with pytest.raises(NarratorError) as err:
                client.complete(SYSTEM, USER)
            errors.append(err.value)
        llm.api_key = "sk-the-right-one"  # now the server echoes the key it got in a 401
        with pytest.raises(NarratorError) as err:
            client.complete(SYSTEM, USER)
        errors.append(err.value)
        assert "Incorrect API key provided: ***" in err.value.problem
        assert all(CANARY not in r.path and CANARY not in str(r.query) for r in llm.requests)
    unreachable = make(provider, f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(NarratorError) as err:
        unreachable.complete(SYSTEM, USER)
    errors.append(err.value)
    assert any(r.levelno == logging.WARNING for r in caplog.records)  # the retries were logged
    assert_no_canary(
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        *(str(e.__cause__) for e in errors),
        *(r.getMessage() for r in caplog.records),
        caplog.text,
        repr(client),
        repr(unreachable),
        repr(client._post),  # type: ignore[attr-defined]
    )


# ---- the shared poster ----------------------------------------------------------------------
def test_retry_after_is_capped() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, headers={"Retry-After": "120"}, json={"error": "busy"})
        return httpx.Response(200, json={"ok": True})

    sleeps: list[float] = []
    post = JsonPoster(
        "demo", retries=1, transport=httpx.MockTransport(handler), sleep=sleeps.append
    )
    assert post("http://llm.test/x", {}) == {"ok": True}
    assert sleeps == [30.0]


def test_retry_after_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Mon, 01 Jan 2024 12:00:05 GMT", now=now) == 5.0
    assert retry_after_seconds("-3") == 0.0


def test_url_passwords_are_masked() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, json={"error": "bad gateway"}))
    client = OllamaClient("http://me:hunter22@proxy.test", transport=transport, retries=0)
    with pytest.raises(NarratorError) as err:
        client.complete(SYSTEM, USER)
    assert "hunter22" not in str(err.value) and "http://me:***@proxy.test" in str(err.value)
    assert "hunter22" not in repr(client)
