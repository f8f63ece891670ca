"""What happens to a payment after it succeeded: disputes, early fraud warnings, and
refunds that fail later, each triggered by Stripe's test cards.

- ``4000000000000259`` (``pm_card_createDispute``): the charge succeeds, then a
  ``fraudulent`` dispute opens (``charge.dispute.created``; the charge is ``disputed``).
  Submitting evidence closes it the way Stripe's test mode does:
  ``evidence[uncategorized_text]=winning_evidence`` wins, ``losing_evidence`` loses
  (``charge.dispute.updated`` then ``charge.dispute.closed``); ``POST
  /v1/disputes/{id}/close`` accepts it as lost.
- ``4000000000005423`` (``pm_card_createIssuerFraudRecord``): the charge succeeds and a
  Radar early fraud warning is created (``radar.early_fraud_warning.created``).
- ``4000000000005126`` (``pm_card_refundFail``): a refund starts ``succeeded`` and fails
  ``EMULATOR_REFUND_FAILURE_SECONDS`` later (default 5; on the emulator's clock, so
  ``POST /_emulator/clock`` brings it on): ``refund.updated`` and ``refund.failed``, and
  the charge's ``amount_refunded`` drops back.

Routes: ``GET/POST /v1/disputes/{id}``, ``GET /v1/disputes``, ``POST
/v1/disputes/{id}/close``, ``GET /v1/radar/early_fraud_warnings[/{id}]``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app

from . import cards, core, strict

log = logging.getLogger(__name__)

bp = Blueprint("disputes", __name__, url_prefix="/v1")

# Days the merchant has to answer a dispute in the emulator (Stripe: set by the network).
EVIDENCE_DAYS = 7
DEFAULT_REFUND_FAILURE_SECONDS = 5
# Pending refund failures live in ``counters`` as ``refund_fail:<refund id>`` = due time
# (emulator clock), so ``/_emulator/reset`` forgets them with everything else.
_FAIL_PREFIX = "refund_fail:"

EVIDENCE_TEXT_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
EVIDENCE_FILE_FIELDS = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
CLOSED = ("won", "lost", "warning_closed", "prevented")


def _profile_of_charge(charge: dict[str, Any]) -> cards.CardProfile:
    pm = core.get(charge.get("payment_method"), "payment_method")
    card = (pm or {}).get("card") or {}
    return cards.profile_by_fingerprint(card.get("fingerprint"))


# --------------------------------------------------------------------------- after a payment


def after_success(charge: dict[str, Any]) -> None:
    """Called (inside the payment's transaction) once a charge has succeeded and its
    ``payment_intent.succeeded`` is recorded: the test card decides what comes next."""
    after = _profile_of_charge(charge).after
    if after == cards.DISPUTE:
        open_dispute(charge)
    elif after == cards.EARLY_FRAUD_WARNING:
        early_fraud_warning(charge)


def open_dispute(charge: dict[str, Any], reason: str = "fraudulent") -> dict[str, Any]:
    """The cardholder's bank disputes the whole charge."""
    brand = (charge.get("payment_method_details") or {}).get("card", {}).get("brand", "visa")
    dispute = core.base_object(
        "du",
        "dispute",
        amount=charge["amount"],
        balance_transactions=[],
        charge=charge["id"],
        currency=charge["currency"],
        enhanced_eligibility_types=[],
        evidence=_empty_evidence(),
        evidence_details={
            "due_by": core.now() + EVIDENCE_DAYS * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        is_charge_refundable=False,
        metadata={},
        network_reason_code="10.4",
        payment_intent=charge.get("payment_intent"),
        payment_method_details={
            "card": {
                "brand": brand,
                "case_type": "chargeback",
                "network": brand,
                "network_reason_code": "10.4",
            },
            "type": "card",
        },
        reason=reason,
        status="needs_response",
    )
    core.save(dispute)
    charge["disputed"] = True
    core.save(charge)
    core.record_event("charge.dispute.created", dispute)
    log.info("dispute %s opened on charge %s", dispute["id"], charge["id"])
    return dispute


def _empty_evidence() -> dict[str, Any]:
    evidence: dict[str, Any] = dict.fromkeys(EVIDENCE_TEXT_FIELDS + EVIDENCE_FILE_FIELDS)
    evidence["enhanced_evidence"] = {}
    return evidence


def early_fraud_warning(charge: dict[str, Any]) -> dict[str, Any]:
    warning = core.base_object(
        "issfr",
        "radar.early_fraud_warning",
        actionable=True,
        charge=charge["id"],
        fraud_type="made_with_stolen_card",
        payment_intent=charge.get("payment_intent"),
    )
    core.save(warning)
    core.record_event("radar.early_fraud_warning.created", warning)
    log.info("early fraud warning %s on charge %s", warning["id"], charge["id"])
    return warning


def open_dispute_blocks_refund(charge: dict[str, Any]) -> core.StripeError | None:
    """Stripe refuses to refund a charge with an open chargeback (the money is already
    withdrawn for the dispute)."""
    if not charge.get("disputed"):
        return None
    for dispute in core.all_of("dispute", lambda d: d.get("charge") == charge["id"]):
        if dispute["status"] not in CLOSED:
            return core.StripeError(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
                param="charge",
            )
    return None


# --------------------------------------------------------------------------- refund failures


def schedule_refund_failure(refund: dict[str, Any], charge: dict[str, Any]) -> None:
    """A refund of a ``4000000000005126`` payment fails later (inside the refund's
    transaction)."""
    if _profile_of_charge(charge).after != cards.REFUND_FAILS:
        return
    delay = current_app.config.get("EMULATOR_REFUND_FAILURE_SECONDS")
    delay = DEFAULT_REFUND_FAILURE_SECONDS if delay is None else float(delay)
    core.db().execute(
        "INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
        (_FAIL_PREFIX + refund["id"], int(core.now() + delay)),
    )
    core.wake_background()


def fail_due_refunds() -> float | None:
    """Background sweep: refunds whose failure is due fail; seconds until the next one."""
    rows = (
        core.db()
        .execute("SELECT name, value FROM counters WHERE name LIKE ?", (_FAIL_PREFIX + "%",))
        .fetchall()
    )
    now = core.clock()
    for name, due in rows:
        if due <= now:
            _fail_refund(name[len(_FAIL_PREFIX) :])
    later = [due for _, due in rows if due > now]
    return min(later) - now if later else None


def _fail_refund(refund_id: str) -> None:
    with core.transaction() as conn:
        conn.execute("DELETE FROM counters WHERE name=?", (_FAIL_PREFIX + refund_id,))
        refund = core.get(refund_id, "refund")
        if refund is None or refund["status"] != "succeeded":
            return
        refund["status"] = "failed"
        refund["failure_reason"] = "expired_or_canceled_card"
        refund["failure_balance_transaction"] = None
        core.save(refund)
        charge = core.get(refund["charge"], "charge")
        if charge is not None:
            charge["amount_refunded"] = max(charge["amount_refunded"] - refund["amount"], 0)
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            core.save(charge)
        core.record_event("refund.updated", refund, {"status": "succeeded"})
        core.record_event("refund.failed", refund)
    log.info("refund %s failed", refund_id)


core.on_sweep(fail_due_refunds)


# --------------------------------------------------------------------------- routes


@bp.get("/disputes/<dispute_id>")
@strict.accepts("DisputeRetrieveParams", strict.RETRIEVE)
def retrieve_dispute(dispute_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(dispute_id, "dispute"))


@bp.get("/disputes")
@strict.accepts("DisputeListParams", [*strict.LIST, "charge", "payment_intent"])
def list_disputes():
    core.authenticate()
    return core.list_matching("dispute", "/v1/disputes", "charge", "payment_intent")


@bp.post("/disputes/<dispute_id>")
@strict.accepts(
    "DisputeUpdateParams",
    [
        "metadata",
        "submit",
        *(f"evidence.{name}" for name in EVIDENCE_TEXT_FIELDS + EVIDENCE_FILE_FIELDS),
    ],
)
def update_dispute(dispute_id: str):
    """Stage or submit evidence (``submit`` defaults to true, as in Stripe's API)."""
    core.authenticate()
    p = core.params()
    with core.transaction():
        dispute = core.get_or_404(dispute_id, "dispute")
        if dispute["status"] in CLOSED:
            raise core.StripeError(f"This dispute is already closed ({dispute['status']}).")
        evidence = p.get("evidence")
        if evidence not in (None, ""):
            if not isinstance(evidence, dict):
                raise core.invalid("evidence")
            for name, value in evidence.items():
                if name in EVIDENCE_TEXT_FIELDS or name in EVIDENCE_FILE_FIELDS:
                    if not isinstance(value, str):
                        raise core.invalid(f"evidence[{name}]")
                    dispute["evidence"][name] = value or None
                else:
                    raise core.StripeError(
                        f"Received unknown parameter: evidence[{name}]",
                        param=f"evidence[{name}]",
                    )
            dispute["evidence_details"]["has_evidence"] = any(
                dispute["evidence"][k] for k in EVIDENCE_TEXT_FIELDS + EVIDENCE_FILE_FIELDS
            )
        if "metadata" in p:
            dispute["metadata"] = core.metadata_from(p, dispute["metadata"])
        submit = core.to_bool(p.get("submit", "true"))
        previous = {"status": dispute["status"]}
        if submit:
            details = dispute["evidence_details"]
            details["submission_count"] += 1
            details["submission_method"] = "manual"
            details["past_due"] = core.now() > (details["due_by"] or 0)
            dispute["status"] = "under_review"
        core.save(dispute)
        core.record_event("charge.dispute.updated", dispute, previous)
        text = dispute["evidence"].get("uncategorized_text")
        if submit and text in ("winning_evidence", "losing_evidence"):
            _close(dispute, "won" if text == "winning_evidence" else "lost")
    return core.respond(dispute)


@bp.post("/disputes/<dispute_id>/close")
@strict.accepts("DisputeCloseParams", strict.RETRIEVE)
def close_dispute(dispute_id: str):
    """Accept the dispute: it is lost."""
    core.authenticate()
    with core.transaction():
        dispute = core.get_or_404(dispute_id, "dispute")
        if dispute["status"] not in CLOSED:
            _close(dispute, "lost")
    return core.respond(dispute)


def _close(dispute: dict[str, Any], status: str) -> None:
    previous = {"status": dispute["status"]}
    dispute["status"] = status
    dispute["is_charge_refundable"] = False
    core.save(dispute)
    core.record_event("charge.dispute.closed", dispute, previous)
    log.info("dispute %s closed: %s", dispute["id"], status)


@bp.get("/radar/early_fraud_warnings/<warning_id>")
@strict.accepts("radar.EarlyFraudWarningRetrieveParams", strict.RETRIEVE)
def retrieve_early_fraud_warning(warning_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(warning_id, "radar.early_fraud_warning"))


@bp.get("/radar/early_fraud_warnings")
@strict.accepts("radar.EarlyFraudWarningListParams", [*strict.LIST, "charge", "payment_intent"])
def list_early_fraud_warnings():
    core.authenticate()
    return core.list_matching(
        "radar.early_fraud_warning", "/v1/radar/early_fraud_warnings", "charge", "payment_intent"
    )
