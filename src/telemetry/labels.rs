//! The closed sets metric labels take, besides spec names: each value is a fixed word, so
//! no label can take a value from an event.

/// Declares a closed label set: the enum, `ALL` in declaration order (so that `value as
/// usize` indexes a list of handles made from `ALL`) and each value's label text.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }
    };
}

closed_set! {
    /// The state store a process serves (`integ_build_info{store}`).
    StoreKind {
        Sqlite => "sqlite",
    }
}

closed_set! {
    /// A call to the state store on `integ serve`'s hot path
    /// (`integ_store_operation_duration_seconds{op}`).
    StoreOp {
        /// Events committed to the inbox (webhooks, polls, schedules).
        Enqueue => "enqueue",
        /// Events claimed from the inbox (recovered, deferred, replayed).
        Claim => "claim",
        /// A step's result kept for a resumed run.
        Checkpoint => "checkpoint",
        /// A run's end: done, failed, dead-lettered or deferred, with its history record.
        Finish => "finish",
        /// This process's claims renewed.
        Heartbeat => "heartbeat",
        /// Claimed events put back.
        Unclaim => "unclaim",
    }
}

closed_set! {
    /// The answer to a webhook request (`integ_webhook_requests_total{code}`).
    WebhookCode {
        Accepted => "202",
        BadRequest => "400",
        Unauthorized => "401",
        NotFound => "404",
        MethodNotAllowed => "405",
        Timeout => "408",
        TooLarge => "413",
        TriggerFailed => "500",
        Unavailable => "503",
        /// Any other status (a malformed request axum refused).
        Other => "other",
    }
}

impl WebhookCode {
    /// The answers a request a webhook took can get.
    pub const ROUTED: &[WebhookCode] = &[
        Self::Accepted,
        Self::BadRequest,
        Self::Unauthorized,
        Self::Timeout,
        Self::TooLarge,
        Self::TriggerFailed,
        Self::Unavailable,
        Self::Other,
    ];
    /// The answers a request no webhook took can get.
    pub const UNROUTED: &[WebhookCode] = &[
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Unavailable,
        Self::Other,
    ];

    pub fn of(status: u16) -> Self {
        match status {
            202 => Self::Accepted,
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::Timeout,
            413 => Self::TooLarge,
            500 => Self::TriggerFailed,
            503 => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

closed_set! {
    /// Why a webhook's signature was refused (`integ_webhook_signature_failures_total`).
    SignatureReason {
        /// The signature header is missing.
        Missing => "missing",
        /// The header is there but cannot be read.
        Malformed => "malformed",
        /// The signature does not match the body.
        Mismatch => "mismatch",
        /// The signed timestamp is outside the tolerance (a replay, or a skewed clock).
        Stale => "stale",
        /// The signing secret could not be read.
        NoSecret => "no_secret",
    }
}

closed_set! {
    /// Why a trigger's event was intentionally not enqueued (`integ_events_discarded_total`).
    Discard {
        /// Its `when` was false.
        Filtered => "filtered",
        /// Its `dedupe` key was seen before.
        Duplicate => "duplicate",
    }
}

closed_set! {
    /// How a run ended (`integ_runs_total{outcome}`).
    RunOutcome {
        Succeeded => "succeeded",
        Failed => "failed",
        DeadLettered => "dead_lettered",
        /// Put back in the inbox until the wait an API asked for is over.
        Deferred => "deferred",
    }
}

closed_set! {
    /// How a step ended (`integ_step_runs_total{outcome}`).
    StepOutcome {
        Succeeded => "succeeded",
        /// Its `when` was false, or `on_error skip` skipped it after a failure.
        Skipped => "skipped",
        Failed => "failed",
        DeadLettered => "dead_lettered",
        FellBack => "fell_back",
    }
}

closed_set! {
    /// Why an event was dead-lettered at a step (`integ_dead_letters_total{error_type}`):
    /// the status of the last answer, or its absence.
    DeadLetterType {
        Http4xx => "http_4xx",
        Http429 => "http_429",
        Http5xx => "http_5xx",
        /// Another status (a response rule failed the answer).
        HttpOther => "http_other",
        /// No answer: a timeout, a connection that failed, an open circuit, a mapping error.
        NoResponse => "no_response",
        /// The API asked, again and again, to wait past a day.
        DeferredTooLong => "deferred_too_long",
    }
}

impl DeadLetterType {
    /// The type of a dead letter whose last answer had `status`.
    pub fn of(status: Option<u16>) -> Self {
        match status {
            None => Self::NoResponse,
            Some(429) => Self::Http429,
            Some(400..=499) => Self::Http4xx,
            Some(500..=599) => Self::Http5xx,
            Some(_) => Self::HttpOther,
        }
    }
}

closed_set! {
    /// The class of an outbound answer (`integ_http_client_requests_total{code_class}`);
    /// `none` when no answer came.
    CodeClass {
        C2xx => "2xx",
        C3xx => "3xx",
        C4xx => "4xx",
        C429 => "429",
        C5xx => "5xx",
        /// Any other status (1xx, or outside 100..=599).
        Other => "other",
        None => "none",
    }
}

impl CodeClass {
    pub fn of(status: Option<u16>) -> Self {
        match status {
            None => Self::None,
            Some(429) => Self::C429,
            Some(200..=299) => Self::C2xx,
            Some(300..=399) => Self::C3xx,
            Some(400..=499) => Self::C4xx,
            Some(500..=599) => Self::C5xx,
            Some(_) => Self::Other,
        }
    }
}

closed_set! {
    /// The method of an outbound call (`integ_http_client_request_duration_seconds{method}`):
    /// the methods a spec can write.
    HttpMethod {
        Get => "GET",
        Post => "POST",
        Put => "PUT",
        Patch => "PATCH",
        Delete => "DELETE",
        Head => "HEAD",
        Options => "OPTIONS",
    }
}

closed_set! {
    /// Why an outbound call got no answer (`integ_http_client_errors_total{error_type}`).
    ErrorType {
        Timeout => "timeout",
        /// The connection was never made.
        Connect => "connect",
        /// The connection broke after the request went out.
        Broken => "broken",
        /// The answer was larger than the cap.
        TooLarge => "too_large",
        /// A redirect or a next-page link off the connection's base URL, refused.
        Redirect => "redirect_refused",
        /// The circuit breaker failed the call fast.
        CircuitOpen => "circuit_open",
        Other => "other",
    }
}

closed_set! {
    /// Why an outbound call was sent again (`integ_http_client_retries_total{reason}`).
    RetryReason {
        Status429 => "429",
        Status5xx => "5xx",
        /// A 4xx the retry policy names, or a response rule's `retry`.
        Status4xx => "4xx",
        Timeout => "timeout",
        /// The connection failed or broke.
        Network => "network",
        Other => "other",
    }
}

closed_set! {
    /// Who held a call back (`integ_rate_limit_throttled_total{source}`).
    ThrottleSource {
        /// integ: the declared rate or concurrency, or a pause the API asked for earlier.
        Local => "local",
        /// The API: a 429, so the declared limit is higher than the API's.
        Remote => "remote",
    }
}

closed_set! {
    /// A circuit breaker's state (`integ_circuit_breaker_state{state}`).
    BreakerState {
        Closed => "closed",
        Open => "open",
        /// The cool-down is over and one probe call decides.
        HalfOpen => "half_open",
    }
}

closed_set! {
    /// A lookup in a connection's response cache (`integ_cache_requests_total{result}`).
    CacheResult {
        Hit => "hit",
        Miss => "miss",
    }
}

closed_set! {
    /// Whether something worked (`integ_oauth_token_refreshes_total{result}`, ...).
    Outcome {
        Ok => "ok",
        Error => "error",
    }
}

closed_set! {
    /// The state of an unfinished inbox event (`integ_inbox_events{state}`).
    InboxState {
        /// Waiting to run (deferred ones included).
        Pending => "pending",
        Running => "running",
    }
}

closed_set! {
    /// What one of `integ serve`'s `--workers` is doing (`integ_workers{state}`).
    WorkerState {
        /// Running an event.
        Busy => "busy",
        Idle => "idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_indexes_its_place_in_all() {
        for (index, op) in StoreOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, index, "{op:?}");
        }
        for (index, class) in CodeClass::ALL.iter().enumerate() {
            assert_eq!(*class as usize, index, "{class:?}");
        }
    }

    #[test]
    fn statuses_fall_in_their_class() {
        assert_eq!(CodeClass::of(Some(429)), CodeClass::C429);
        assert_eq!(CodeClass::of(Some(404)), CodeClass::C4xx);
        assert_eq!(CodeClass::of(Some(999)), CodeClass::Other);
        assert_eq!(CodeClass::of(None), CodeClass::None);
        assert_eq!(WebhookCode::of(202), WebhookCode::Accepted);
        assert_eq!(WebhookCode::of(418), WebhookCode::Other);
        assert_eq!(DeadLetterType::of(Some(503)), DeadLetterType::Http5xx);
    }
}
