"""Planning: the campaign, lifecycle and policy files (specs with line-aware errors, compiled
into ``domain`` values) and the pure nightly planner."""
