# The send queue and its dead-letter queue.
#
# Retries are SQS's job, not the application's: a failed pseudo send leaves the
# message in flight, the worker shortens its visibility to RETRY_BACKOFF_SECONDS
# with ChangeMessageVisibility, and after var.max_receives receives SQS moves
# it to the DLQ. The worker marks the gift FAILED on that last receive (it reads
# the same number as MAX_RECEIVES), so a DLQ message normally belongs to a
# FAILED gift; docs/runbook.md covers the exceptions.

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.name}-send-dlq"
  message_retention_seconds = 1209600 # 14 days, the SQS maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "main" {
  name = "${local.name}-send"

  # Processing one message takes milliseconds; 60 s is far above the worst case
  # (DB acquire timeout + statements), and the worker renews it while a send runs.
  visibility_timeout_seconds = var.sqs_visibility_timeout_seconds
  receive_wait_time_seconds  = var.worker_wait_seconds
  message_retention_seconds  = 345600 # 4 days
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receives
  })

  lifecycle {
    precondition {
      condition     = var.sqs_visibility_timeout_seconds > var.retry_backoff_seconds
      error_message = "sqs_visibility_timeout_seconds must exceed retry_backoff_seconds."
    }
    # The worker refuses to start otherwise: a re-arm inside the retry window would
    # publish duplicates of messages still being retried.
    precondition {
      condition     = var.stale_queued_seconds > var.max_receives * (var.sqs_visibility_timeout_seconds + var.retry_backoff_seconds) && var.stale_queued_seconds <= 604800
      error_message = "stale_queued_seconds must exceed max_receives × (sqs_visibility_timeout_seconds + retry_backoff_seconds) and be at most 7 days."
    }
  }
}

# Only the main queue may use the DLQ (also what the console's "start DLQ redrive" needs).
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}

# Refuse plain-HTTP access to either queue.
resource "aws_sqs_queue_policy" "tls_only" {
  for_each = {
    main = aws_sqs_queue.main
    dlq  = aws_sqs_queue.dlq
  }

  queue_url = each.value.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sqs:*"
      Resource  = each.value.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}
