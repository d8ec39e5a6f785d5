//! Notification endpoints and messages as stored: plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::schedule::EventKind;

/// How an endpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// A signed JSON webhook (Standard Webhooks).
    Webhook,
    /// A WeCom (企业微信) group robot: markdown messages.
    Wecom,
    /// A DingTalk (钉钉) custom robot, optionally signed: markdown messages.
    Dingtalk,
}

/// Whose endpoint it is: a station's (its communities' events) or a bureau's (its region's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Station(u64),
    /// A county or city region code.
    Bureau(String),
}

/// A signing secret; an old one keeps signing until it expires (rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a station or bureau hears about its work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: u64,
    pub owner: Owner,
    pub kind: EndpointKind,
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Kinds wanted; empty: every kind.
    #[serde(default)]
    pub events: Vec<EventKind>,
    pub enabled: bool,
    /// Why it was disabled, when the daemon did it (a receiver answering 410 Gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Webhook: `whsec_…` secrets (the newest first); DingTalk: the robot's `SEC…` secret.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Whether this endpoint wants events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        kind == EventKind::EndpointTest || self.events.is_empty() || self.events.contains(&kind)
    }

    /// Secrets still valid at `now`, newest first.
    pub fn live_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|e| e > now))
            .map(|s| s.value.as_str())
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Every retry failed, or the endpoint went away: kept for replay.
    Dead,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The HTTP status, when one came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong (a timeout, a refused connection, the robot's `errcode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One event for one endpoint, with its delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: u64,
    pub endpoint: u64,
    /// The outbox event (0 for a test message).
    pub event: u64,
    pub kind: EventKind,
    /// Sent ahead of routine traffic.
    pub urgent: bool,
    pub state: MessageState,
    /// Failed attempts in this round (a replay starts a new round; the log keeps them all).
    pub tries: u32,
    /// Rate-limit answers in a row (they do not count as failed attempts).
    #[serde(default)]
    pub throttles: u32,
    /// The delivery log: the most recent attempts (at most 50).
    pub attempts: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The `webhook-id`, fixed when the message is made: `msg_`, this installation's random
    /// prefix and the message id — unique even across a database restored from an old backup.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_id: String,
    /// What is sent, fixed when the message is made so every retry sends the same bytes; dropped
    /// after the retention period once delivered (the log stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub body: Option<String>,
}

impl Message {
    /// The `webhook-id`: the same on every retry and replay, so receivers can deduplicate.
    pub fn webhook_id(&self) -> String {
        if self.webhook_id.is_empty() {
            format!("msg_{}", self.id)
        } else {
            self.webhook_id.clone()
        }
    }
}
