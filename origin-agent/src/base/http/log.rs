//! What every listener records of a request when it has answered: one count in the metrics
//! (listener, route class, status) and one log line.

use std::time::Instant;

use hyper::{Method, Request};

use crate::base::metrics::{RouteLabel, METRICS};

/// At most this many characters of a path go into the log.
const LOGGED_PATH_CHARS: usize = 200;

/// What the log line needs of a request, taken when it arrives (the request itself moves on).
pub struct Arrival {
    method: Method,
    path: String,
    at: Instant,
}

impl Arrival {
    pub fn of<B>(req: &Request<B>) -> Arrival {
        Arrival {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            at: Instant::now(),
        }
    }

    /// The path as it arrived (before any rewriting).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Counts the answered request and logs it (`listener` is the metrics' and the log's name).
    pub fn answered(
        &self,
        listener: &'static str,
        request_id: &str,
        route: RouteLabel,
        status: u16,
    ) {
        METRICS.request(listener, route, status);
        let path = &*self.path;
        tracing::info!(
            listener,
            request_id,
            method = %self.method,
            path = %path.char_indices().nth(LOGGED_PATH_CHARS).map_or(path, |(i, _)| &path[..i]),
            status,
            elapsed_ms = self.at.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}
