"""The queries the actions need, behind one small class (so actions never write SQL)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from assistant.db.models import AnswerFeedback, Base, Customer, InvoiceRequest, Order, PasswordReset, Plan, Ticket
from assistant.db.session import make_engine, make_sessionmaker, session_scope


@dataclass(frozen=True)
class OrderView:
    number: str
    plan: str
    plan_zh: str
    billing_cycle: str
    amount: str
    currency: str
    status: str
    created: str
    customer_email: str


@dataclass(frozen=True)
class PlanView:
    code: str
    name_zh: str
    storage: str
    price_cny: str | None
    price_usd: str | None
    per_user: bool


class Repository:
    def __init__(self, factory: sessionmaker[Session]):
        self._factory = factory

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 5.0) -> "Repository":
        return cls(make_sessionmaker(make_engine(url, timeout_s)))

    def create_schema(self) -> None:
        with session_scope(self._factory) as s:
            Base.metadata.create_all(s.get_bind())

    def get_order(self, number: str) -> OrderView | None:
        with session_scope(self._factory) as s:
            o = s.execute(
                select(Order).where(Order.number == number.upper())
                .options(selectinload(Order.customer), selectinload(Order.plan))
            ).scalar_one_or_none()
            if o is None:
                return None
            return OrderView(o.number, o.plan_code, o.plan.name_zh, o.billing_cycle, f"{o.amount:.2f}",
                             o.currency, o.status, o.created_at.date().isoformat(), o.customer.email)

    def plans(self) -> list[PlanView]:
        with session_scope(self._factory) as s:
            rows = s.execute(select(Plan).order_by(Plan.position)).scalars().all()
            fmt = lambda v: None if v is None else f"{v:.2f}".rstrip("0").rstrip(".")  # noqa: E731
            return [PlanView(p.code, p.name_zh, p.storage, fmt(p.price_cny), fmt(p.price_usd), p.per_user)
                    for p in rows]

    def request_invoice(self, order_number: str, email: str) -> tuple[int, bool]:
        """Queue an invoice; return (request id, created). Asking twice returns the first request."""
        with session_scope(self._factory) as s:
            existing = s.execute(
                select(InvoiceRequest).where(InvoiceRequest.order_number == order_number,
                                             InvoiceRequest.email == email)
            ).scalar_one_or_none()
            if existing:
                return existing.id, False
            req = InvoiceRequest(order_number=order_number, email=email)
            s.add(req)
            try:
                s.flush()
            except IntegrityError:  # a concurrent duplicate won the race
                s.rollback()
                return self.request_invoice(order_number, email)
            return req.id, True

    def record_password_reset(self, email: str, sender_id: str) -> bool:
        """Record a reset for a known account; False when no account has that e-mail."""
        with session_scope(self._factory) as s:
            customer = s.execute(select(Customer).where(Customer.email == email.lower())).scalar_one_or_none()
            if customer is None:
                return False
            s.add(PasswordReset(customer_id=customer.id, sender_id=sender_id))
            return True

    def create_ticket(self, sender_id: str, channel: str, language: str, reason: str, transcript: list) -> int:
        with session_scope(self._factory) as s:
            t = Ticket(sender_id=sender_id, channel=channel, language=language, reason=reason, transcript=transcript)
            s.add(t)
            s.flush()
            return t.id

    def tickets_for(self, sender_id: str) -> list[dict]:
        with session_scope(self._factory) as s:
            rows = s.execute(select(Ticket).where(Ticket.sender_id == sender_id).order_by(Ticket.id)).scalars()
            return [{"id": t.id, "reason": t.reason, "transcript": t.transcript, "status": t.status} for t in rows]

    def invoice_requests_for(self, order_number: str) -> list[dict]:
        with session_scope(self._factory) as s:
            rows = s.execute(select(InvoiceRequest).where(InvoiceRequest.order_number == order_number)).scalars()
            return [{"id": r.id, "email": r.email, "status": r.status} for r in rows]

    def record_feedback(self, sender_id: str, answer_id: str, rating: int, answer_text: str = "",
                        channel: str = "") -> int:
        """One rating per answer and conversation; a second click replaces the first."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        with session_scope(self._factory) as s:
            row = s.execute(select(AnswerFeedback).where(AnswerFeedback.sender_id == sender_id,
                                                         AnswerFeedback.answer_id == answer_id)).scalar_one_or_none()
            if row is None:
                row = AnswerFeedback(sender_id=sender_id, answer_id=answer_id, channel=channel)
                s.add(row)
            row.rating, row.answer_text = rating, answer_text[:4000]
            s.flush()
            return row.id

    def feedback_for(self, sender_id: str | None = None) -> list[dict]:
        """Ratings of one conversation, or of all conversations (``sender_id=None``), oldest first."""
        query = select(AnswerFeedback).order_by(AnswerFeedback.id)
        if sender_id is not None:
            query = query.where(AnswerFeedback.sender_id == sender_id)
        with session_scope(self._factory) as s:
            return [{"sender_id": r.sender_id, "answer_id": r.answer_id, "rating": r.rating,
                     "answer_text": r.answer_text, "channel": r.channel} for r in s.execute(query).scalars()]
