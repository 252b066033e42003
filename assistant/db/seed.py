"""Demo data for CloudMax: plans, customers and orders CM100001..CM100012. Idempotent."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy.orm import Session

from assistant.db.models import Base, Customer, Order, Plan

PLANS = [
    # code, name_zh, storage, CNY/month, USD/month, per user
    ("Free", "免费版", "5 GB", "0", "0", False),
    ("Basic", "基础版", "200 GB", "15", "2.99", False),
    ("Pro", "专业版", "2 TB", "45", "9.99", False),
    ("Business", "商业版", "5 TB / user", "98", "19.99", True),
    ("Enterprise", "企业版", "unlimited", None, None, False),
]

CUSTOMERS = [
    (1, "li.wei@example.com", "李伟", "zh"),
    (2, "zhang.san@qq.com", "张三", "zh"),
    (3, "wangfang@163.com", "王芳", "zh"),
    (4, "emma.jones@example.com", "Emma Jones", "en"),
    (5, "raj.patel@gmail.com", "Raj Patel", "en"),
    (6, "ops@acme-tech.example.com", "Acme Tech IT", "en"),
]

ORDERS = [
    # number, customer, plan, cycle, amount, currency, status, created
    ("CM100001", 1, "Pro", "monthly", "45.00", "CNY", "paid", "2026-10-03"),
    ("CM100002", 1, "Pro", "annual", "450.00", "CNY", "paid", "2026-06-12"),
    ("CM100003", 2, "Basic", "monthly", "15.00", "CNY", "paid", "2026-11-01"),
    ("CM100004", 2, "Basic", "monthly", "15.00", "CNY", "failed", "2026-11-18"),
    ("CM100005", 3, "Business", "annual", "2940.00", "CNY", "pending", "2026-11-20"),
    ("CM100006", 3, "Pro", "monthly", "45.00", "CNY", "refunded", "2026-09-05"),
    ("CM100007", 4, "Pro", "monthly", "9.99", "USD", "paid", "2026-11-02"),
    ("CM100008", 4, "Pro", "annual", "99.90", "USD", "paid", "2026-03-15"),
    ("CM100009", 5, "Basic", "monthly", "2.99", "USD", "cancelled", "2026-08-21"),
    ("CM100010", 5, "Basic", "annual", "29.90", "USD", "paid", "2026-10-30"),
    ("CM100011", 6, "Business", "monthly", "99.95", "USD", "paid", "2026-11-10"),
    ("CM100012", 6, "Enterprise", "annual", "24000.00", "USD", "pending", "2026-11-21"),
]


def seed(session: Session) -> dict[str, int]:
    """Create tables and insert whatever demo rows are missing; return how many were added."""
    Base.metadata.create_all(session.get_bind())
    added = {"plans": 0, "customers": 0, "orders": 0}
    for i, (code, zh, storage, cny, usd, per_user) in enumerate(PLANS):
        if session.get(Plan, code) is None:
            session.add(Plan(code=code, name_zh=zh, storage=storage, per_user=per_user, position=i,
                             price_cny=Decimal(cny) if cny is not None else None,
                             price_usd=Decimal(usd) if usd is not None else None))
            added["plans"] += 1
    for cid, email, name, lang in CUSTOMERS:
        if session.get(Customer, cid) is None:
            session.add(Customer(id=cid, email=email, name=name, language=lang))
            added["customers"] += 1
    session.flush()
    for number, cid, plan, cycle, amount, currency, status, created in ORDERS:
        if session.get(Order, number) is None:
            session.add(Order(number=number, customer_id=cid, plan_code=plan, billing_cycle=cycle,
                              amount=Decimal(amount), currency=currency, status=status,
                              created_at=datetime.fromisoformat(created).replace(tzinfo=timezone.utc)))
            added["orders"] += 1
    return added
