//! Tiers and rate limits (docs/api.md §5.4–5.5, docs/api.md decision 5): a sliding 60-second window per key, a fixed
//! clock-hour window per tenant whose size the requesting key's tier sets, and a daily cap on packet
//! creates per tenant and tier.
//!
//! Counting is the store's job ([`LimitStore::count_request`]): PostgreSQL keeps the windows in
//! an unlogged table so every instance on one database shares them; the embedded SQLite store, which one
//! process owns, keeps them in memory (`store::rate_windows`). The daily cap is a conditional upsert in the
//! database on both backends, so it survives restarts and holds across instances.

use super::store::LimitStore;
use super::{ApiKey, Tier};
use crate::persistence::StoreError;
use crate::timestamp::Timestamp;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// How a tenant's hour window is named among the rate windows.
pub const TENANT_HOUR_SCOPE: &str = "hour:tenant:";

/// Length of the sliding window, in seconds.
pub const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The Unix second at which the clock hour holding `second` began.
pub fn hour_start(second: i64) -> i64 {
    second - second.rem_euclid(HOUR)
}

/// One number per tier, written `free=100,pro=1000,business=10000` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierTable {
    pub free: u64,
    pub pro: u64,
    pub business: u64,
}

impl TierTable {
    pub fn get(&self, tier: Tier) -> u64 {
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Business => self.business,
        }
    }

    /// Parses `free=A,pro=B,business=C` (every tier once, any order), reading each value with `value`.
    pub fn parse_with(
        text: &str,
        value: impl Fn(&str) -> Result<u64, String>,
    ) -> Result<Self, String> {
        let mut found: [Option<u64>; 3] = [None; 3];
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let (tier, number) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not tier=value"))?;
            let tier = Tier::parse(tier.trim())
                .ok_or_else(|| format!("unknown tier {tier:?} (free, pro or business)"))?;
            let slot = &mut found[tier as usize];
            if slot.is_some() {
                return Err(format!("tier {} is given twice", tier.as_str()));
            }
            *slot = Some(value(number.trim())?);
        }
        match found {
            [Some(free), Some(pro), Some(business)] => Ok(TierTable {
                free,
                pro,
                business,
            }),
            _ => Err(format!(
                "{text:?} must give every tier, e.g. free=100,pro=1000,business=10000"
            )),
        }
    }
}

impl FromStr for TierTable {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TierTable::parse_with(text, |number| {
            number
                .parse()
                .map_err(|_| format!("{number:?} is not a whole number"))
        })
    }
}

impl fmt::Display for TierTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "free={},pro={},business={}",
            self.free, self.pro, self.business
        )
    }
}

/// The limits in force; a zero turns a limit off (for a tier, or for everyone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    /// Off with `--no-rate-limits`: no window and no daily cap is counted (body sizes still apply).
    pub enabled: bool,
    /// Requests per key in any 60 seconds, every tier alike.
    pub per_minute: u64,
    /// Requests per tenant and clock hour, by the requesting key's tier.
    pub per_hour: TierTable,
    /// Packet creates per tenant and UTC day, by the requesting key's tier (a batch is one).
    pub daily_creates: TierTable,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            per_minute: 60,
            per_hour: TierTable {
                free: 100,
                pro: 1_000,
                business: 10_000,
            },
            daily_creates: TierTable {
                free: 5,
                pro: 0,
                business: 0,
            },
        }
    }
}

/// Who a request is counted against.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Key(&'a ApiKey),
    /// No valid key: counted per client address, as tier `free`, in an hour window of its own (not the
    /// default tenant's, so anonymous traffic cannot use up a real tenant's hour).
    Anonymous(IpAddr),
}

impl Subject<'_> {
    pub fn tier(&self) -> Tier {
        match self {
            Subject::Key(key) => key.tier,
            Subject::Anonymous(_) => Tier::Free,
        }
    }

    fn minute_scope(&self) -> String {
        match self {
            Subject::Key(key) => format!("minute:key:{}", key.id),
            Subject::Anonymous(address) => format!("minute:ip:{address}"),
        }
    }

    /// Distinct from every minute scope: one table holds both kinds of window.
    fn hour_scope(&self) -> String {
        match self {
            Subject::Key(key) => format!("{TENANT_HOUR_SCOPE}{}", key.tenant_id),
            Subject::Anonymous(address) => format!("hour:ip:{address}"),
        }
    }
}

/// One request to count: in the window of `minute` (scope, second) and of `hour` (scope, hour start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateHit {
    pub minute: Option<String>,
    pub hour: Option<String>,
    /// Unix seconds now.
    pub second: i64,
    /// Unix seconds at the start of the current clock hour.
    pub hour_start: i64,
}

/// The counts after a [`RateHit`] (this request included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateCounts {
    /// Requests in the last 60 seconds (0 when the minute was not counted).
    pub minute: u64,
    /// The earliest second of the window that holds a request.
    pub oldest_second: i64,
    /// Requests in this clock hour (0 when the hour was not counted).
    pub hour: u64,
}

/// What the `X-RateLimit-*` headers say (docs/api.md §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds: 60 while allowed under the minute limit, else until the window frees a slot.
    pub reset: u64,
    pub tier: Tier,
    /// Set when the request is refused.
    pub retry_after: Option<u64>,
}

impl Quota {
    pub fn refused(&self) -> bool {
        self.retry_after.is_some()
    }
}

pub struct Limiter {
    settings: LimitSettings,
}

impl Limiter {
    pub fn new(settings: LimitSettings) -> Self {
        Self { settings }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Counts a request and decides it; `None` when no window applies (limits off).
    pub async fn admit(
        &self,
        store: &dyn LimitStore,
        subject: Subject<'_>,
        now: Timestamp,
    ) -> Result<Option<Quota>, StoreError> {
        if !self.settings.enabled {
            return Ok(None);
        }
        let tier = subject.tier();
        let per_minute = self.settings.per_minute;
        let per_hour = self.settings.per_hour.get(tier);
        if per_minute == 0 && per_hour == 0 {
            return Ok(None);
        }
        let second = now.unix_seconds();
        let hour_start = hour_start(second);
        let hit = RateHit {
            minute: (per_minute > 0).then(|| subject.minute_scope()),
            hour: (per_hour > 0).then(|| subject.hour_scope()),
            second,
            hour_start,
        };
        let counts = store.count_request(&hit).await?;
        let to_next_hour = (hour_start + HOUR - second).max(1) as u64;
        // Over the minute: wait until its oldest request leaves. Over the hour: until the next clock hour.
        let refusal = if per_minute > 0 && counts.minute > per_minute {
            Some((
                per_minute,
                (counts.oldest_second + MINUTE - second).max(1) as u64,
            ))
        } else if per_hour > 0 && counts.hour > per_hour {
            Some((per_hour, to_next_hour))
        } else {
            None
        };
        let quota = match refusal {
            Some((limit, wait)) => {
                // A refused request does not use up the key's minute (it still counts in the hour).
                if let Some(scope) = &hit.minute {
                    store.refund_request(scope, second).await?;
                }
                Quota {
                    limit,
                    remaining: 0,
                    reset: wait,
                    tier,
                    retry_after: Some(wait),
                }
            }
            None if per_minute > 0 => Quota {
                limit: per_minute,
                remaining: per_minute - counts.minute,
                reset: MINUTE as u64,
                tier,
                retry_after: None,
            },
            None => Quota {
                limit: per_hour,
                remaining: per_hour - counts.hour,
                reset: to_next_hour,
                tier,
                retry_after: None,
            },
        };
        Ok(Some(quota))
    }

    /// Takes one of the tenant's creates for today (a whole batch takes one). `Err(seconds)` when the
    /// key's tier has used its cap: the seconds until the next UTC day.
    pub async fn take_daily_create(
        &self,
        store: &dyn LimitStore,
        key: &ApiKey,
        now: Timestamp,
    ) -> Result<Result<(), u64>, StoreError> {
        let cap = self.settings.daily_creates.get(key.tier);
        if !self.settings.enabled || cap == 0 {
            return Ok(Ok(()));
        }
        let second = now.unix_seconds();
        let day = second.div_euclid(DAY);
        if store.take_daily_slot(&key.tenant_id, day, cap).await? {
            Ok(Ok(()))
        } else {
            Ok(Err(((day + 1) * DAY - second).max(1) as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_tables_need_every_tier_once() {
        let table: TierTable = "business=3, free=1,pro=2".parse().expect("parses");
        assert_eq!((table.free, table.pro, table.business), (1, 2, 3));
        assert_eq!(table.to_string().parse::<TierTable>(), Ok(table));
        for bad in [
            "free=1,pro=2",
            "free=1,pro=2,business=x",
            "free=1,free=2,pro=1,business=1",
            "gold=1",
            "free",
        ] {
            assert!(bad.parse::<TierTable>().is_err(), "{bad}");
        }
    }
}
