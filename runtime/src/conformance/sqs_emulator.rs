//! Test fixtures for an SQS emulator (moto): a client with dummy credentials, and a queue
//! with a dead-letter queue configured the way Terraform configures the real ones.

use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;

/// A client for the emulator at `endpoint` (region us-east-1, dummy credentials).
pub fn client(endpoint: &str) -> Client {
    Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .http_client(crate::sqs::http_client())
            .timeout_config(crate::sqs::timeouts(Duration::ZERO))
            .credentials_provider(Credentials::new("test", "test", None, None, "emulator"))
            .build(),
    )
}

/// Creates `name` and `name-dlq`, with a redrive after `max_receives` receives; returns
/// (queue URL, dead-letter queue URL). Panics on failure: this is a test fixture.
pub async fn queue_with_dlq(
    client: &Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receives: u32,
) -> (String, String) {
    let dlq = client.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("create DLQ");
    let dlq_url = dlq.queue_url.expect("DLQ URL");
    let attrs = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("DLQ attributes");
    let arn = attrs.attributes.expect("attributes")[&QueueAttributeName::QueueArn].clone();
    let redrive = format!("{{\"deadLetterTargetArn\":\"{arn}\",\"maxReceiveCount\":\"{max_receives}\"}}");
    let main = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .expect("create queue");
    (main.queue_url.expect("queue URL"), dlq_url)
}

/// Up to ten bodies of the queue at `url`, looked at with visibility 0 so that they stay
/// visible to the next look (a dead-letter queue's contents, for one).
pub async fn peek_bodies(client: &Client, url: &str) -> Vec<String> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive from the emulator");
    out.messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect()
}
