# SES: the sending domain (DKIM-signed) and a policy that allows sending only from it, only as
# the configured senders. The alerts task and the report function get this policy and no other
# SES permission. A new account's SES is in the sandbox: request production access (README).

resource "aws_sesv2_configuration_set" "this" {
  configuration_set_name = local.name

  delivery_options {
    tls_policy = "REQUIRE"
  }

  reputation_options {
    reputation_metrics_enabled = true
  }

  sending_options {
    sending_enabled = true
  }
}

resource "aws_sesv2_email_identity" "domain" {
  email_identity         = var.email_domain
  configuration_set_name = aws_sesv2_configuration_set.this.configuration_set_name

  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }
}

data "aws_iam_policy_document" "ses_send" {
  statement {
    sid     = "SendFromTheDelotonIdentityOnly"
    actions = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [
      aws_sesv2_email_identity.domain.arn,
      aws_sesv2_configuration_set.this.arn,
    ]
    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = distinct([var.alert_email_sender, var.report_email_sender, var.quality_email_sender])
    }
  }
}
