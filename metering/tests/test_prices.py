import pytest

from metering.prices import cost_cents, price_of
from metering.services import crossed, usage_from_reply
from molecule_site.env import EnvError, env_prices


def test_price_lookup_exact_prefix_provider_and_default(settings):
    settings.MODEL_PRICES = {"default": (1, 2), "gpt-4o": (250, 1000), "gpt-4o-mini": (15, 60)}
    assert price_of("gpt-4o-mini-2024-07-18") == (15, 60)  # the longest prefix
    assert price_of("openai:gpt-4o") == (250, 1000)
    assert price_of("openrouter/openai/gpt-4o") == (250, 1000)
    assert price_of("something-else") == (1, 2)
    assert cost_cents("gpt-4o", 1_000_000, 1_000_000) == 1250


def test_budget_crossings():
    assert crossed(0, 100, None) == []
    assert crossed(0, 79, 100) == []
    assert crossed(79, 80, 100) == ["BUDGET_WARNING"]
    assert crossed(80, 99, 100) == []
    assert crossed(50, 120, 100) == ["BUDGET_WARNING", "BUDGET_EXCEEDED"]
    assert crossed(100, 150, 100) == []


def test_usage_is_read_from_each_place_the_original_and_ours_put_it():
    usage = {"input_tokens": 3, "output_tokens": 4, "model": "m"}
    for reply in ({"result": {"usage": usage}}, {"usage": usage}, {"result": {"metadata": {"usage": usage}}}):
        found = usage_from_reply(reply)
        assert (found.model, found.input_tokens, found.output_tokens) == ("m", 3, 4)
    assert usage_from_reply({"result": {"parts": []}}) is None
    assert usage_from_reply("text") is None
    assert usage_from_reply({"result": {"usage": {"input_tokens": 1, "model": 5}}}).model == ""


def test_whole_number_doubles_count_as_tokens_and_fractions_do_not():
    """a2a-sdk 1.x carries metadata as a protobuf Struct: our runtime's counts arrive as 20.0."""
    found = usage_from_reply({"result": {"metadata": {"usage": {"input_tokens": 20.0, "output_tokens": 10.0}}}})
    assert (found.input_tokens, found.output_tokens) == (20, 10) and isinstance(found.input_tokens, int)
    assert usage_from_reply({"result": {"usage": {"input_tokens": 2.5, "output_tokens": 1}}}) is None
    assert usage_from_reply({"result": {"usage": {"input_tokens": float("inf"), "output_tokens": 1}}}) is None


def test_price_overrides_from_the_environment(monkeypatch):
    monkeypatch.setenv("MODEL_PRICES_JSON", '{"mine": [3, 4.5]}')
    assert env_prices("MODEL_PRICES_JSON") == {"mine": (3.0, 4.5)}
    for bad in ("[1]", '{"x": [1]}', '{"x": [-1, 2]}', '{"x": ["1", 2]}', "{"):
        monkeypatch.setenv("MODEL_PRICES_JSON", bad)
        with pytest.raises(EnvError, match="MODEL_PRICES_JSON"):
            env_prices("MODEL_PRICES_JSON")
