//! Step 5 of the gate: the rate limits ([`argus_shared::rate_limit`]), counted where the
//! configuration says ([`Limiter`]).
//!
//! - `binding` (the default, on Cloudflare): the Workers rate-limiting bindings of
//!   `wrangler.toml` (`PAIRING_LIMITER`, `DEVICE_LIMITER`).
//! - `isolate` (`RATE_LIMITER = "isolate"`, the self-hosted relay): plain workerd has no such
//!   binding; the Worker counts in its isolate with the same limits. workerd runs one isolate per
//!   Worker, so the count covers the whole server; it starts over when workerd restarts.

use std::cell::RefCell;

use argus_shared::rate_limit::{Limit, SlidingWindow, DEVICE, PAIRING};
use worker::Env;

use crate::error::{internal, EdgeError};

/// Where requests are counted (`RATE_LIMITER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limiter {
    Binding,
    Isolate,
}

impl Limiter {
    /// `None` for an unknown name (a configuration error).
    pub fn from_var(value: Option<&str>) -> Option<Limiter> {
        match value.map(str::trim) {
            None | Some("binding") => Some(Limiter::Binding),
            Some("isolate") => Some(Limiter::Isolate),
            Some(_) => None,
        }
    }
}

/// Which limit a request falls under.
#[derive(Debug, Clone, Copy)]
pub enum Class {
    /// Public pairing and identity routes, keyed by client IP.
    Pairing,
    /// The authenticated API, keyed by device.
    Device,
}

impl Class {
    fn limit(self) -> Limit {
        match self {
            Class::Pairing => PAIRING,
            Class::Device => DEVICE,
        }
    }

    fn binding(self) -> &'static str {
        match self {
            Class::Pairing => "PAIRING_LIMITER",
            Class::Device => "DEVICE_LIMITER",
        }
    }
}

thread_local! {
    // One isolate, one thread: the counters of `Limiter::Isolate`.
    static PAIRING_WINDOW: RefCell<SlidingWindow> = RefCell::new(SlidingWindow::new(PAIRING));
    static DEVICE_WINDOW: RefCell<SlidingWindow> = RefCell::new(SlidingWindow::new(DEVICE));
}

/// Counts the request; 429 `rate_limited` (with `Retry-After`) when it is over its limit.
pub async fn check(
    env: &Env,
    limiter: Limiter,
    class: Class,
    key: String,
) -> Result<(), EdgeError> {
    let allowed = match limiter {
        Limiter::Binding => {
            let binding = env
                .rate_limiter(class.binding())
                .map_err(|_| EdgeError::Config {
                    reason: "config.rate_limiter",
                })?;
            binding
                .limit(key)
                .await
                .map_err(internal("gate.rate_limit"))?
                .success
        }
        Limiter::Isolate => {
            let now_ms = worker::Date::now().as_millis();
            let window = match class {
                Class::Pairing => &PAIRING_WINDOW,
                Class::Device => &DEVICE_WINDOW,
            };
            window.with_borrow_mut(|w| w.allow(&key, now_ms))
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(EdgeError::RateLimited {
            retry_after_secs: class.limit().period_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_is_chosen_by_name() {
        assert_eq!(Limiter::from_var(None), Some(Limiter::Binding));
        assert_eq!(Limiter::from_var(Some("binding")), Some(Limiter::Binding));
        assert_eq!(Limiter::from_var(Some(" isolate ")), Some(Limiter::Isolate));
        assert_eq!(Limiter::from_var(Some("durable-object")), None);
    }
}
