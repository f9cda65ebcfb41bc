"""When each fault is injected during a soak: fixed fractions of the feed's duration."""

from __future__ import annotations

from dataclasses import dataclass

INGEST_KILL = "SIGKILL an ingest process"
ALERTS_KILL = "SIGKILL the alerts worker"
PG_RESTART = "PostgreSQL restart (fast shutdown, start)"
BROKER_FREEZE = "broker frozen (SIGSTOP ... SIGCONT)"
SES_DOWN = "SES unavailable (connections refused)"
FAULTS = (INGEST_KILL, ALERTS_KILL, PG_RESTART, BROKER_FREEZE, SES_DOWN)


@dataclass(frozen=True)
class Injection:
    """One fault at `at_s` seconds into the feed, lasting `for_s` (0: instantaneous)."""

    at_s: float
    fault: str
    for_s: float = 0.0
    target: int = 0  # which ingest process (0 or 1)

    def describe(self) -> str:
        """'  45 s  SIGKILL an ingest process #1' (with its length when it lasts)."""
        what = f"{self.fault} #{self.target + 1}" if self.fault == INGEST_KILL else self.fault
        length = f" for {self.for_s:.0f} s" if self.for_s else ""
        return f"{self.at_s:6.0f} s  {what}{length}"


def plan(duration_s: float) -> list[Injection]:
    """The faults of a soak whose feed lasts `duration_s`: three ingest kills, one alerts kill,
    a PostgreSQL restart, a 10 s broker freeze and SES down for 60 s (a fifth of the run when
    that is shorter). Each is over before the next begins, except that the SES outage spans
    the alerts worker's kill on purpose: the restarted worker meets an email server that
    refuses it, with alerts already pending."""
    d = duration_s
    ses_for = min(60.0, 0.2 * d)
    freeze_for = min(10.0, 0.15 * d)
    injections = [
        Injection(0.12 * d, INGEST_KILL, target=0),
        Injection(0.20 * d, SES_DOWN, for_s=ses_for),
        Injection(0.30 * d, ALERTS_KILL),
        Injection(0.45 * d, INGEST_KILL, target=1),
        Injection(0.55 * d, PG_RESTART),
        Injection(0.66 * d, BROKER_FREEZE, for_s=freeze_for),
        Injection(0.85 * d, INGEST_KILL, target=0),
    ]
    return sorted(injections, key=lambda i: i.at_s)
