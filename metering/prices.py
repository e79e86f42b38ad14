"""What a model's tokens cost: ``settings.MODEL_PRICES`` (USD cents per million tokens)."""

from django.conf import settings


def price_of(model: str) -> tuple[float, float]:
    """(input, output) cents per million tokens: the exact model, else the longest listed prefix
    (``gpt-4o-2024-08-06`` → ``gpt-4o``), else ``default``. A provider prefix (``openai:``) is ignored."""
    prices = settings.MODEL_PRICES
    name = model.split(":", 1)[-1].split("/")[-1] if model else ""
    if name in prices:
        found = prices[name]
    else:
        prefixes = [key for key in prices if key != "default" and name.startswith(key)]
        found = prices[max(prefixes, key=len)] if prefixes else prices.get("default", (0, 0))
    return float(found[0]), float(found[1])


def cost_cents(model: str, input_tokens: int, output_tokens: int) -> float:
    input_price, output_price = price_of(model)
    return (input_tokens * input_price + output_tokens * output_price) / 1_000_000
