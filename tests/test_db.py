"""Business data on SQLite and on the local PostgreSQL server."""

from __future__ import annotations

import pytest

from assistant.db.repository import Repository
from tests.conftest import postgres_url, seed_database


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else postgres_url()
    seed_database(url)
    seed_database(url)  # seeding twice adds nothing
    return Repository.from_url(url)


def test_orders_and_plans(repo):
    order = repo.get_order("cm100003")
    assert order.number == "CM100003" and order.plan == "Basic" and order.status == "paid"
    assert repo.get_order("CM999999") is None
    plans = repo.plans()
    assert [p.code for p in plans] == ["Free", "Basic", "Pro", "Business", "Enterprise"]
    assert plans[2].price_cny == "45" and plans[2].price_usd == "9.99" and plans[4].price_usd is None


def test_invoice_requests_are_idempotent(repo):
    first = repo.request_invoice("CM100001", "li.wei@example.com")
    second = repo.request_invoice("CM100001", "li.wei@example.com")
    assert first[1] is True and second == (first[0], False)


def test_password_reset_only_for_known_accounts(repo):
    assert repo.record_password_reset("LI.WEI@example.com", "s1") is True
    assert repo.record_password_reset("nobody@example.com", "s1") is False


def test_tickets_keep_the_transcript(repo):
    transcript = [{"role": "user", "text": "转人工"}, {"role": "bot", "text": "好的"}]
    tid = repo.create_ticket("s-42", "rest", "zh", "转人工", transcript)
    assert repo.tickets_for("s-42") == [{"id": tid, "reason": "转人工", "transcript": transcript, "status": "open"}]
