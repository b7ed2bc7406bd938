//! The production queue on Amazon SQS (aws-sdk-sqs). Configuration is the SDK's own: region
//! and credentials from the standard chain, and `AWS_ENDPOINT_URL_SQS` for an emulator.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use gift_core::domain::SendMessage;
use gift_core::ports::{Delivery, Queue, Receipt};
use gift_core::QueueError;

pub use aws_sdk_sqs::Client as SqsClient;

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
        Client::new(&loader.load().await)
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

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn publish(&self, body: &str) -> Result<(), QueueError> {
        let mut send = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        // The request id also travels as an attribute, so it is visible without parsing the body.
        if let Ok(msg) = SendMessage::from_body(body) {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(msg.request_id.as_str())
                .build()
                .map_err(|e| QueueError::Other(e.to_string()))?;
            send = send.message_attributes("request_id", attr);
        }
        send.send().await.map(|_| ()).map_err(queue_error)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(seconds(wait).min(20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
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
            deliveries.push(Delivery { body: m.body.unwrap_or_default(), receipt: Receipt(receipt), receive_count });
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
