"""ORM models of the demo company's business data."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import JSON, DateTime, ForeignKey, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Plan(Base):
    __tablename__ = "plans"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # Free, Basic, Pro, Business, Enterprise
    name_zh: Mapped[str] = mapped_column(String(32))
    storage: Mapped[str] = mapped_column(String(32))
    price_cny: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))  # per month; None = custom quote
    price_usd: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    per_user: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(2), default="en")
    orders: Mapped[list["Order"]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    number: Mapped[str] = mapped_column(String(16), primary_key=True)  # CM + 6 digits
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"))
    billing_cycle: Mapped[str] = mapped_column(String(8))  # monthly | annual
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # paid | pending | failed | refunded | cancelled
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer: Mapped[Customer] = relationship(back_populates="orders")
    plan: Mapped[Plan] = relationship()


class InvoiceRequest(Base):
    __tablename__ = "invoice_requests"
    __table_args__ = (UniqueConstraint("order_number", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_number: Mapped[str] = mapped_column(ForeignKey("orders.number"))
    email: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PasswordReset(Base):
    __tablename__ = "password_resets"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    sender_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str] = mapped_column(String(2), default="en")
    reason: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerFeedback(Base):
    """👍/👎 on one answer in one conversation (the web demo and other channels record it)."""

    __tablename__ = "answer_feedback"
    __table_args__ = (UniqueConstraint("sender_id", "answer_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(255), index=True)
    answer_id: Mapped[str] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column()  # +1 or -1
    answer_text: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
