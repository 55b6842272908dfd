//! Background work that runs beside the request paths: packet expiry and the pruning of ended rate windows
//! (webhook delivery and live-event fan-out join them). Each worker owns one loop and stops when told to.

pub mod expiry;
pub mod live;
pub mod pruning;
pub mod webhooks;
