"""Rewards: issuers, the ledger's posting rules, budgets."""
