"""Heart-rate alerts: the rider's safe range, episodes, the alert record and its email."""
