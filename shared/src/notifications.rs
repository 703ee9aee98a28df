//! In-portal notifications on the wire.

use serde::{Deserialize, Serialize};

/// How much a notification matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Needs attention.
    High,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// Every severity, least first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Normal,
        Severity::High,
        Severity::Critical,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses `low`, `normal`, `high` or `critical`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One notification as its reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// `user:default/dana`, `group:default/payments` or `broadcast`.
    pub recipient: String,
    /// The headline.
    pub title: String,
    /// More detail.
    pub description: Option<String>,
    /// Where to go.
    pub link: Option<String>,
    /// How much it matters.
    pub severity: Severity,
    /// Unix seconds.
    pub created_at: i64,
    /// Whether this reader has marked it read (marks are per person).
    pub read: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(Severity::parse("urgent"), None);
    }
}
