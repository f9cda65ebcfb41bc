"""`deloton soak`: the whole stack under real faults for a bounded time, checked against the truth."""
