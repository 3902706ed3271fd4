"""Planning: user files (lifecycle, campaigns, policy) → specs with line-aware errors → plans."""
