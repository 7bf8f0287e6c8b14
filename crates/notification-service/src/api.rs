//! The JSON bodies of notification-service, used by the server and by
//! [`crate::NotificationClient`].

use serde::{Deserialize, Serialize};

/// Body of `POST /notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyRequest {
    /// The order (a UUID).
    pub order_id: String,
    /// The item ordered.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
}

/// Answer to `POST /notify` (202 Accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyAccepted {
    /// The order.
    pub order_id: String,
    /// Always `accepted`.
    pub status: String,
}
