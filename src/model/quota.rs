/// Where a device stands against its data plan (`[plan.<device_id>]`), for the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The plan's quota in bytes.
    pub quota: u64,
    /// Bytes used in the plan's current period (both directions).
    pub used: u64,
    /// `quota - used`, never below 0.
    pub remaining: u64,
    /// `used` has reached the plan's `warn_at` share of the quota.
    pub over: bool,
    /// `day` or `month`.
    pub period: &'static str,
}
