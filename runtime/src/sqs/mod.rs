//! The production queue on Amazon SQS (aws-sdk-sqs). Configuration is the SDK's own: region
//! and credentials from the standard chain, and `AWS_ENDPOINT_URL_SQS` for an emulator.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, DeleteMessageBatchResultEntry, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use gift_core::domain::{SendMessage, TraceParent};
use gift_core::ports::{Delivery, MessageId, Queue, Receipt};
use gift_core::QueueError;

pub use aws_sdk_sqs::Client as SqsClient;

/// One HTTP request to SQS (connect, send, answer) gets this long...
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// ...and a call with its retries this long.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// Every SQS call is bounded, a long-poll receive by its wait plus the usual allowance: a
/// hung call fails as `Unavailable` (the SDK's timeout error), which the API answers with a
/// 503 and the worker and relay retry, instead of stalling a loop with its heartbeat.
pub fn timeouts(long_poll: Duration) -> aws_sdk_sqs::config::timeout::TimeoutConfig {
    aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(long_poll + ATTEMPT_TIMEOUT)
        .operation_timeout(long_poll + OPERATION_TIMEOUT)
        .build()
}

/// The HTTPS client every SQS client here uses: rustls on ring, the TLS stack the PostgreSQL
/// driver already links, rather than the SDK's default (rustls on aws-lc-rs). The SDK
/// panics on a call without a client, so each constructor sets this one.
pub fn http_client() -> aws_sdk_sqs::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// A client from the standard AWS configuration chain (environment, profile, ECS task
    /// role, `AWS_ENDPOINT_URL_SQS`), with `region` overriding the chain's region if given.
    pub async fn client_from_env(region: Option<String>) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        Client::new(&loader.http_client(http_client()).timeout_config(timeouts(Duration::ZERO)).load().await)
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// Timeouts and dispatch failures mean SQS could not be reached: retry later. Service
/// errors (bad queue URL, access denied) are configuration bugs.
fn queue_error<E, R>(e: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(&e).to_string();
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            QueueError::Unavailable(text)
        }
        _ => QueueError::Other(text),
    }
}

/// Entries per `DeleteMessageBatch` request, the most SQS accepts.
const BATCH_MAX: usize = 10;

/// Each entry's answer, entry `i` having been sent with id `i`: success where SQS listed it as
/// successful, its error where SQS listed it as failed (a fault on SQS's side is worth a
/// retry, one on ours is not), and an error where SQS listed it as neither.
fn batch_answers(
    n: usize,
    successful: &[DeleteMessageBatchResultEntry],
    failed: &[BatchResultErrorEntry],
) -> Vec<Result<(), QueueError>> {
    (0..n)
        .map(|i| {
            let id = i.to_string();
            if let Some(f) = failed.iter().find(|f| f.id() == id) {
                let text = format!("{}: {}", f.code(), f.message().unwrap_or("no message"));
                Err(if f.sender_fault() { QueueError::Other(text) } else { QueueError::Unavailable(text) })
            } else if successful.iter().any(|s| s.id() == id) {
                Ok(())
            } else {
                Err(QueueError::Unavailable(format!("SQS did not answer for batch entry {id}")))
            }
        })
        .collect()
}

impl SqsQueue {
    async fn delete_batch(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(&r.0).build())
            .collect::<Result<Vec<_>, _>>();
        let sent = match entries {
            Ok(entries) => {
                self.client.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await
            }
            Err(e) => return vec![Err(QueueError::Other(e.to_string())); receipts.len()],
        };
        match sent {
            Ok(out) => batch_answers(receipts.len(), out.successful(), out.failed()),
            Err(e) => vec![Err(queue_error(e)); receipts.len()],
        }
    }
}

/// The message attribute that carries the W3C trace context (the header's name, as
/// OpenTelemetry's SQS propagation names it).
const TRACEPARENT: &str = "traceparent";

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Other(e.to_string()))
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn publish(&self, message: &SendMessage, trace: Option<&TraceParent>) -> Result<MessageId, QueueError> {
        // The request id also travels as an attribute, so it is visible without parsing the body.
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.to_body())
            .message_attributes("request_id", string_attribute(message.request_id.as_str())?);
        if let Some(trace) = trace {
            send = send.message_attributes(TRACEPARENT, string_attribute(&trace.to_string())?);
        }
        let out = send.send().await.map_err(queue_error)?;
        out.message_id
            .map(MessageId)
            .ok_or_else(|| QueueError::Other("SendMessage answered without a MessageId".into()))
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(seconds(wait.min(MAX_WAIT)))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(TRACEPARENT)
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts(wait.min(MAX_WAIT))))
            .send()
            .await
            .map_err(queue_error)?;
        let mut deliveries = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let receive_count = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| QueueError::Other("message without ApproximateReceiveCount".into()))?;
            let receipt = m.receipt_handle.ok_or_else(|| QueueError::Other("message without receipt handle".into()))?;
            let message_id = m.message_id.ok_or_else(|| QueueError::Other("message without MessageId".into()))?;
            // An unreadable traceparent leaves the delivery untraced; it is not poison.
            let trace = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(TRACEPARENT))
                .and_then(|v| v.string_value())
                .and_then(|v| TraceParent::parse(v).ok());
            deliveries.push(Delivery {
                message_id: MessageId(message_id),
                body: m.body.unwrap_or_default(),
                receipt: Receipt(receipt),
                receive_count,
                trace,
            });
        }
        Ok(deliveries)
    }

    async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&receipt.0)
            .send()
            .await
            .map(|_| ())
            .map_err(queue_error)
    }

    async fn delete_all(&self, receipts: &[Receipt]) -> Vec<Result<(), QueueError>> {
        let mut answers = Vec::with_capacity(receipts.len());
        for chunk in receipts.chunks(BATCH_MAX) {
            answers.extend(self.delete_batch(chunk).await);
        }
        answers
    }

    async fn set_visibility(&self, receipt: &Receipt, delay: Duration) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&receipt.0)
            .visibility_timeout(seconds(delay))
            .send()
            .await
            .map(|_| ())
            .map_err(queue_error)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map(|_| ())
            .map_err(queue_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> DeleteMessageBatchResultEntry {
        DeleteMessageBatchResultEntry::builder().id(id).build().unwrap()
    }

    fn failed(id: &str, code: &str, sender_fault: bool) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .code(code)
            .message("said no")
            .sender_fault(sender_fault)
            .build()
            .unwrap()
    }

    #[test]
    fn each_batch_entry_gets_its_own_answer() {
        let answers = batch_answers(
            4,
            &[ok("2"), ok("0")],
            &[failed("1", "ReceiptHandleIsInvalid", true), failed("3", "InternalError", false)],
        );
        assert_eq!(
            answers,
            [
                Ok(()),
                Err(QueueError::Other("ReceiptHandleIsInvalid: said no".into())),
                Ok(()),
                Err(QueueError::Unavailable("InternalError: said no".into())),
            ]
        );
    }

    #[test]
    fn an_entry_sqs_did_not_mention_is_not_taken_as_deleted() {
        let answers = batch_answers(2, &[ok("0")], &[]);
        assert_eq!(answers[0], Ok(()));
        assert!(matches!(&answers[1], Err(QueueError::Unavailable(text)) if text.contains("entry 1")));
    }
}
