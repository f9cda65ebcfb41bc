"""`python -m tests.quality.crash_while_sending NOW ses|outbox after|before`: one fleet health
run (settings from the environment) whose process is killed with SIGKILL at its first email,
right after the sender accepted it (`after`: SES or the outbox has it, the database does not
know) or right before it is handed over (`before`)."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from email.message import EmailMessage

from services.alerts.sender import OutboxSender, Sender, SesSender, ses_client
from services.common.config import Settings
from services.quality import job


class KilledWhileSending:
    def __init__(self, inner: Sender, when: str) -> None:
        self.inner = inner
        self.when = when

    def send(self, msg: EmailMessage) -> str:
        if self.when == "after":
            self.inner.send(msg)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def main(now: str, transport: str, when: str) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    inner: Sender
    if transport == "ses":
        inner = SesSender(ses_client(settings))
    else:
        inner = OutboxSender(settings.email_outbox_dir)
    job.run(settings, now=datetime.fromisoformat(now), sender=KilledWhileSending(inner, when))


if __name__ == "__main__":
    main(*sys.argv[1:4])
