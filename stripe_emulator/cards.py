"""Stripe's test cards: what each number does when it is charged.

The emulator never stores card numbers.  A payment method keeps what Stripe shows
(brand, last4, expiry, a ``fingerprint``); the fingerprint is a keyed hash of the
number, so the behaviour of a test card is looked up by fingerprint when it is charged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Behaviours of a card when charged.
SUCCEED = "succeed"
DECLINE = "decline"  # declined by the issuer with ``decline_code``
THREE_DS = "three_ds"  # on-session payments need 3-D Secure; saved cards pay off-session
THREE_DS_ALWAYS = "three_ds_always"  # every payment needs 3-D Secure (off-session fails)
THREE_DS_THEN_DECLINE = "three_ds_then_decline"  # authentication succeeds, then declined

# What follows a successful charge (``disputes``): a dispute opens, an early fraud warning
# is raised, or a refund of it fails later.
DISPUTE = "dispute"
EARLY_FRAUD_WARNING = "early_fraud_warning"
REFUND_FAILS = "refund_fails"


@dataclass(frozen=True)
class Decline:
    """How Stripe reports one decline reason (error code, decline code, customer message)."""

    code: str
    decline_code: str
    message: str


DECLINES: dict[str, Decline] = {
    "generic_decline": Decline("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": Decline(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "lost_card": Decline("card_declined", "lost_card", "Your card was declined."),
    "stolen_card": Decline("card_declined", "stolen_card", "Your card was declined."),
    "expired_card": Decline("expired_card", "expired_card", "Your card has expired."),
    "incorrect_cvc": Decline(
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."
    ),
    "processing_error": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "authentication_required": Decline(
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}


@dataclass(frozen=True)
class CardProfile:
    behaviour: str
    decline: str | None = None  # key of DECLINES for declining behaviours
    brand: str | None = None  # None: from the number's prefix
    funding: str = "credit"
    country: str = "US"
    after: str | None = None  # DISPUTE | EARLY_FRAUD_WARNING | REFUND_FAILS


TEST_CARDS: dict[str, CardProfile] = {
    "4242424242424242": CardProfile(SUCCEED),
    "4000056655665556": CardProfile(SUCCEED, funding="debit"),
    "5555555555554444": CardProfile(SUCCEED),
    "2223003122003222": CardProfile(SUCCEED),
    "5200828282828210": CardProfile(SUCCEED, funding="debit"),
    "378282246310005": CardProfile(SUCCEED),
    "6011111111111117": CardProfile(SUCCEED),
    "4000000000000002": CardProfile(DECLINE, "generic_decline"),
    "4000000000009995": CardProfile(DECLINE, "insufficient_funds"),
    "4000000000009987": CardProfile(DECLINE, "lost_card"),
    "4000000000009979": CardProfile(DECLINE, "stolen_card"),
    "4000000000000069": CardProfile(DECLINE, "expired_card"),
    "4000000000000127": CardProfile(DECLINE, "incorrect_cvc"),
    "4000000000000119": CardProfile(DECLINE, "processing_error"),
    # Attaches to a customer fine; every charge is declined (renewal failures).
    "4000000000000341": CardProfile(DECLINE, "generic_decline"),
    "4000002500003155": CardProfile(THREE_DS),
    "4000002760003184": CardProfile(THREE_DS_ALWAYS),
    "4000000000003220": CardProfile(THREE_DS_ALWAYS),
    "4000008400001629": CardProfile(THREE_DS_THEN_DECLINE, "generic_decline"),
    "4000000000000259": CardProfile(SUCCEED, after=DISPUTE),
    "4000000000005423": CardProfile(SUCCEED, after=EARLY_FRAUD_WARNING),
    "4000000000005126": CardProfile(SUCCEED, after=REFUND_FAILS),
}

# Stripe's test payment method ids, usable wherever a payment method id is accepted.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createIssuerFraudRecord": "4000000000005423",
    "pm_card_refundFail": "4000000000005126",
}


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every card number satisfies."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number: str) -> str:
    """Card brand from the number's prefix, as Stripe names brands."""
    if number.startswith(("34", "37")):
        return "amex"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "discover"
    if number[:2] in ("51", "52", "53", "54", "55") or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number.startswith(("3528", "3529", "353", "354", "355", "356", "357", "358")):
        return "jcb"
    if number.startswith(("36", "300", "301", "302", "303", "304", "305", "38")):
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    if number.startswith("4"):
        return "visa"
    return "unknown"


def fingerprint(number: str) -> str:
    """Stable per card number (like Stripe's), and not reversible to the number."""
    digest = hashlib.sha256(b"stripe-emulator-card:" + number.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:16])


def profile(number: str) -> CardProfile:
    """How a card number behaves (unknown valid numbers succeed)."""
    return TEST_CARDS.get(number, CardProfile(SUCCEED))


_BY_FINGERPRINT = {fingerprint(n): card for n, card in TEST_CARDS.items()}


def profile_by_fingerprint(fp: str | None) -> CardProfile:
    """A stored payment method's behaviour, found through its card fingerprint."""
    return _BY_FINGERPRINT.get(fp or "", CardProfile(SUCCEED))
