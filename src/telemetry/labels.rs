//! The closed sets metric labels take, besides spec names: each value is a fixed word, so
//! no label can take a value from an event.

/// The state store a process serves (`integ_build_info{store}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
        }
    }
}

/// A call to the state store on `integ serve`'s hot path
/// (`integ_store_operation_duration_seconds{op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Events committed to the inbox (webhooks, polls, schedules).
    Enqueue,
    /// Events claimed from the inbox (recovered, deferred, replayed).
    Claim,
    /// A step's result kept for a resumed run.
    Checkpoint,
    /// A run's end: done, failed, dead-lettered or deferred, with its history record.
    Finish,
    /// This process's claims renewed.
    Heartbeat,
    /// Claimed events put back.
    Unclaim,
}

impl StoreOp {
    pub const ALL: [StoreOp; 6] = [
        StoreOp::Enqueue,
        StoreOp::Claim,
        StoreOp::Checkpoint,
        StoreOp::Finish,
        StoreOp::Heartbeat,
        StoreOp::Unclaim,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreOp::Enqueue => "enqueue",
            StoreOp::Claim => "claim",
            StoreOp::Checkpoint => "checkpoint",
            StoreOp::Finish => "finish",
            StoreOp::Heartbeat => "heartbeat",
            StoreOp::Unclaim => "unclaim",
        }
    }
}

/// Whether a channel took an alert's message (`integ_alert_notifications_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Ok,
    Error,
}

impl Delivery {
    pub const ALL: [Delivery; 2] = [Delivery::Ok, Delivery::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Ok => "ok",
            Delivery::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_store_op_indexes_its_place_in_all() {
        for (index, op) in StoreOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, index, "{op:?}");
        }
    }
}
