"""Money: integers in a currency's minor unit, formatted for people."""

from __future__ import annotations

# ISO 4217 currencies whose minor unit is not 1/100 (Stripe's "zero-decimal" list and
# the three-decimal ones). Everything else has two decimals.
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
NAMES = {"usd": "US dollar", "eur": "Euro", "gbp": "Pound sterling", "jpy": "Japanese yen"}


def decimals(currency: str) -> int:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def format_money(amount: int, currency: str) -> str:
    """``format_money(1800, "usd") == "$18.00"``; ``format_money(1800, "jpy") == "¥1,800"``."""
    places = decimals(currency)
    sign = "-" if amount < 0 else ""
    # Integer arithmetic: a float loses cents above 2**53 minor units.
    whole, fraction = divmod(abs(amount), 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {currency.upper()}"
