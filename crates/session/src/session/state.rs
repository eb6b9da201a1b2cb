//! What a [`Session`](super::Session) knows during its request, as a set of phases instead of
//! flags.
//!
//! A session starts [`State::Unloaded`], becomes [`State::Loaded`] on the handler's first call,
//! and ends [`State::Finished`] once the layer has saved it. While loaded, the store side is
//! either [`Backing::Absent`] (no record: none was sent, it was unknown or expired, or it was
//! deleted) or [`Backing::Stored`], and only a stored session carries an id, a version, the
//! record the changes are based on, the pending operations and a pending id change. Making
//! these one type means the write path never has to assert that a record it is about to
//! write was actually loaded.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::id::SessionId;
use crate::store::{Record, Version};

/// A read-modify-write step, kept so that it can run again on a reloaded value.
pub(super) type UpdateFn =
    dyn Fn(Option<&Value>) -> Result<Option<Value>, serde_json::Error> + Send + Sync;

/// One change to one key, as the handler made it.
#[derive(Clone)]
pub(super) enum Op {
    Set(Value),
    Remove,
    Update(Arc<UpdateFn>),
}

/// Where a session is in its request.
#[derive(Default)]
pub(super) enum State {
    /// The handler has not used the session, so nothing was read and nothing will be written.
    #[default]
    Unloaded,
    /// Read from the store (or found not to be there); holds the handler's view. Boxed: a
    /// loaded session holds two records' worth of fields, and every request carries a
    /// `State`, most of them never loaded.
    Loaded(Box<Loaded>),
    /// The layer has saved the session and answered; any later use is an error, since
    /// changes could no longer reach the response.
    Finished,
}

/// A session after its first use.
pub(super) struct Loaded {
    /// The record behind the session, if there is one.
    pub(super) backing: Backing,
    /// The current view: the stored data with this request's changes applied (or, with no
    /// record, everything the handler has set; it is what a new record is created with).
    pub(super) data: Map<String, Value>,
    /// The handler deleted the session, so if it ends the request without a record the client
    /// must drop its id. Only an explicit delete does this: telling a client to drop an
    /// unknown or expired id could race with a newer id sent by a concurrent response and log
    /// the user out.
    pub(super) ended: bool,
    /// The store accepted a write or touch during this request, so a persistent cookie's
    /// Max-Age restarts.
    pub(super) refreshed: bool,
}

impl Loaded {
    pub(super) fn new(backing: Backing) -> Self {
        Self {
            backing,
            data: Map::new(),
            ended: false,
            refreshed: false,
        }
    }

    /// Records `op` for a later compare-and-set. Without a record there is nothing to rebase
    /// onto: the first save creates the record from `data` as a whole.
    pub(super) fn record_op(&mut self, key: &str, op: Op) {
        if let Backing::Stored(stored) = &mut self.backing {
            stored.ops.push((key.to_owned(), op));
        }
    }
}

/// The store side of a loaded session.
pub(super) enum Backing {
    /// No record; the first value stored creates one.
    Absent {
        /// An id the client chose, adopted in non-strict mode when the session is created.
        adopt: Option<SessionId>,
    },
    /// A record in the store that this session reads and writes.
    Stored(Stored),
}

/// A stored session: which record, which version of it, and what this request wants to change.
pub(super) struct Stored {
    pub(super) id: SessionId,
    /// The version `base` has in the store; the next write is a compare-and-set on it.
    pub(super) version: Version,
    /// The record as last read from or written to the store.
    pub(super) base: Record,
    /// Changes not yet written, in order, to re-apply if another request wins the race.
    pub(super) ops: Vec<(String, Op)>,
    /// The id is to be replaced when the session is saved, and how.
    pub(super) cycle: Cycle,
    /// The record is one that `cycle_id` retired: its pre-login state, shown to requests
    /// that raced the id change but never written through (see [`Cycle::Privilege`]).
    pub(super) retired: bool,
    /// How the client learns `id`.
    pub(super) client: ClientId,
}

/// A pending replacement of a stored session's id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Cycle {
    /// None.
    No,
    /// The renewal timeout is due: the same session, same privilege, under a new id. The old
    /// id forwards to the new one for the grace window; following it gives a holder of the
    /// old id nothing that id did not already give.
    Renew,
    /// [`Session::cycle_id`](super::Session::cycle_id): a change of privilege, typically a
    /// login. This request's changes go to the new id only; the old record is retired with
    /// the state it had before this request and names no successor, so a holder of the old
    /// id (a fixation attacker) never reaches the new session, not even for the grace window.
    Privilege,
}

/// How the client comes to hold a stored session's id; decides whether the response sends it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientId {
    /// The client sent this id.
    Sent,
    /// The client sent an id that another request replaced within its grace window (and
    /// was forwarded to the replacement, or shown the retired state); that request's
    /// response carries the new id, so this response must not send any (it could overwrite
    /// the newer one).
    Forwarded,
    /// This request made the id (a new session or a replaced id): the response must send it.
    Issued,
}
