"""Email through moto's SES (once per date unless resent), S3, the CLI and the Lambda handler."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3

from services.cli import main as cli
from services.report import handler, job
from tests.report.conftest import DAY, SENDER, query

TO = ["ceo@deloton.example", "cfo@deloton.example"]


def test_one_raw_email_with_the_pdf_then_nothing_until_resend(seeded, ses, tmp_path):
    settings = seeded.for_test(
        tmp_path, ses_endpoint_url=ses.url, report_sender=SENDER, report_recipients=",".join(TO)
    )
    day = DAY - timedelta(days=1)
    first = job.run(settings, day=day)
    sent = ses.sent()
    assert first.status == "sent" and first.transport == "ses"
    assert len(sent) == 1
    mail = sent[0]
    # moto lists the Destinations given plus the To header's addresses: the same two people.
    assert set(mail.destinations) == set(TO) and mail.source == SENDER
    assert sorted(a.strip() for a in str(mail.message["To"]).split(",")) == sorted(TO)
    attachments = list(mail.message.iter_attachments())
    assert [a.get_filename() for a in attachments] == [f"deloton-report-{day}.pdf"]
    pdf = (tmp_path / "reports" / f"deloton-report-{day}.pdf").read_bytes()
    assert attachments[0].get_content() == pdf
    assert "Rides" in mail.html and "<b>8</b>" in mail.html  # the day's rides, before the PDF
    assert "Rides: 8" in mail.text

    again = job.run(settings, day=day)
    assert again.status == "already_sent" and len(ses.sent()) == 1

    resent = job.run(settings, day=day, resend=True)
    assert resent.status == "resent" and len(ses.sent()) == 2
    assert query(seeded.dsn, "SELECT sends FROM historical.report_deliveries "
                             "WHERE report_date = %s", (day,)) == [(2,)]  # fmt: skip


def test_to_overrides_recipients_and_pdf_goes_to_s3(seeded, ses, moto_url, tmp_path):
    s3 = boto3.client("s3", region_name="eu-west-2", endpoint_url=moto_url,
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(
        Bucket="reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
    )
    settings = seeded.for_test(tmp_path, ses_endpoint_url=ses.url, report_sender=SENDER,
                               report_bucket="reports", report_s3_endpoint_url=moto_url)  # fmt: skip
    day = DAY - timedelta(days=3)
    result = job.run(settings, day=day, recipients=["board@deloton.example"])
    assert [set(m.destinations) for m in ses.sent()] == [{"board@deloton.example"}]
    key = f"reports/{day.year}/deloton-report-{day}.pdf"
    assert f"s3://reports/{key}" in result.stored
    body = s3.get_object(Bucket="reports", Key=key)["Body"].read()
    assert body == (tmp_path / "reports" / f"deloton-report-{day}.pdf").read_bytes()


def test_without_aws_the_email_lands_in_the_outbox(seeded, tmp_path, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    settings = seeded.for_test(tmp_path, report_recipients="ops@deloton.example")
    day = DAY - timedelta(days=5)
    result = job.run(settings, day=day)
    assert result.transport == "outbox"
    emls = list((tmp_path / "outbox").glob("*.eml"))
    assert len(emls) == 1 and b"application/pdf" in emls[0].read_bytes()


def _env(monkeypatch, seeded, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", seeded.dsn)
    monkeypatch.setenv("REPORT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("REPORT_RECIPIENTS", raising=False)


def test_cli_prints_one_json_result(seeded, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, seeded, tmp_path)
    out = tmp_path / "exec.pdf"
    assert cli(["report", "--date", str(DAY), "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["date"] == str(DAY) and result["status"] == "stored"
    assert out.read_bytes().startswith(b"%PDF")
    assert cli(["report", "--date", "26/11/2026"]) == 2
    assert "--date must be YYYY-MM-DD" in capsys.readouterr().err


def test_lambda_handler_reports_the_event_date(seeded, tmp_path, monkeypatch):
    _env(monkeypatch, seeded, tmp_path)
    result = handler.handler({"date": str(DAY)}, None)
    assert result["date"] == str(DAY) and result["rides"] > 0
    assert (tmp_path / "out" / f"deloton-report-{DAY}.pdf").exists()
