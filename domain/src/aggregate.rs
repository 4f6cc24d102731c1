//! The shape every aggregate shares.

/// A consistency boundary: it decides which events a command produces from its current state,
/// and evolves its state from events. Both are pure; loading and appending happen elsewhere.
pub trait Aggregate: Default + Clone {
    type Command;
    type Event: Clone;
    type Error;

    /// The events that `command` produces, or why it is refused. An empty list means the command
    /// asked for what already holds.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event that has happened. Never fails: an event is a fact.
    fn evolve(&mut self, event: &Self::Event);

    /// The number of events applied so far, which is the stream version.
    fn version(&self) -> i64;
}

/// The state after `events`, from the beginning.
pub fn fold<'a, A: Aggregate + 'a>(events: impl IntoIterator<Item = &'a A::Event>) -> A {
    let mut state = A::default();
    for event in events {
        state.evolve(event);
    }
    state
}
