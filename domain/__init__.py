"""The values every room speaks (pure): compiled campaigns and policy, the plan, the keys that
make a nudge unique, and the ledger's posting rules."""
