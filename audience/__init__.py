"""The audience core (pure): rules, lifecycle stages, engagement scores, RFM segments.

Values in, values out: no I/O, no clock, no settings. ``as_of`` instants are parameters.
"""
