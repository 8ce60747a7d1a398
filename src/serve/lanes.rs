//! The events waiting to run, one lane per integration served: the oldest first across
//! lanes, each lane within its integration's `concurrency`. Every operation costs the
//! number of integrations, never the number of events waiting (a backlog of thousands is
//! normal under load).

use crate::engine::Engine;
use crate::store::InboxItem;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    by_name: HashMap<String, usize>,
}

#[derive(Debug)]
struct Lane {
    engine: Arc<Engine>,
    /// The integration's declared `concurrency`.
    limit: Option<usize>,
    /// Its events running now.
    active: usize,
    queue: VecDeque<InboxItem>,
}

impl Lane {
    fn has_room(&self) -> bool {
        self.limit.is_none_or(|limit| self.active < limit)
    }
}

/// An event taken to run: its lane (to give back with `done`), engine and item.
pub(super) type Taken = (usize, Arc<Engine>, InboxItem);

impl Lanes {
    pub(super) fn new(engines: &[Arc<Engine>]) -> Self {
        let lanes: Vec<Lane> = engines
            .iter()
            .map(|engine| Lane {
                engine: engine.clone(),
                limit: engine.plan().concurrency.map(|c| c.get() as usize),
                active: 0,
                queue: VecDeque::new(),
            })
            .collect();
        let by_name = engines
            .iter()
            .enumerate()
            .map(|(index, engine)| (engine.plan().name.clone(), index))
            .collect();
        Self { lanes, by_name }
    }

    /// Queues an event; one of an integration not served is handed back.
    pub(super) fn push(&mut self, item: InboxItem) -> Result<(), InboxItem> {
        match self.by_name.get(&item.integration) {
            Some(&lane) => {
                self.lanes[lane].queue.push_back(item);
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Takes the oldest queued event whose integration has room, counting it running.
    pub(super) fn take(&mut self) -> Option<Taken> {
        let (index, lane) = self
            .lanes
            .iter_mut()
            .enumerate()
            .filter(|(_, lane)| lane.has_room())
            .filter_map(|(index, lane)| Some((lane.queue.front()?.id, index)))
            .min()
            .map(|(_, index)| (index, &mut self.lanes[index]))?;
        let item = lane.queue.pop_front()?;
        lane.active += 1;
        Some((index, lane.engine.clone(), item))
    }

    /// An event of `lane` stopped running.
    pub(super) fn done(&mut self, lane: usize) {
        if let Some(lane) = self.lanes.get_mut(lane) {
            lane.active = lane.active.saturating_sub(1);
        }
    }

    /// Queued events that could start now (their integration has room).
    pub(super) fn ready(&self) -> usize {
        let lanes = self.lanes.iter().filter(|lane| lane.has_room());
        lanes.map(|lane| lane.queue.len()).sum()
    }

    /// The integrations whose running and queued events do not fill their concurrency:
    /// those a claim may take events of.
    pub(super) fn open(&self) -> Vec<String> {
        self.lanes
            .iter()
            .filter(|lane| {
                let taken = lane.active + lane.queue.len();
                lane.limit.is_none_or(|limit| taken < limit)
            })
            .map(|lane| lane.engine.plan().name.clone())
            .collect()
    }

    /// Empties every lane; the ids of the events that were queued.
    pub(super) fn drain(&mut self) -> Vec<i64> {
        let lanes = self.lanes.iter_mut();
        lanes
            .flat_map(|lane| lane.queue.drain(..).map(|item| item.id))
            .collect()
    }
}
