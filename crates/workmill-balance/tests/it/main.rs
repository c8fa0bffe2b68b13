//! Integration tests of workmill-balance: the simulator against closed forms and the targets, and the pool end to end.

mod pool;
mod sim;
