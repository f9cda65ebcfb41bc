"""`deloton demo`: the local infrastructure, a simulated fleet and every service at once."""
