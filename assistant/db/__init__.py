"""Business data (plans, customers, orders, invoices, password resets, handoff tickets) in SQLAlchemy."""
