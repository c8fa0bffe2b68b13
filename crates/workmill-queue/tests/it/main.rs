//! Integration tests of the memory backend against the `Queue` contract written in workmill-core.

mod bounds;
mod leases;
mod lifecycle;
mod model;
mod ordering;
mod support;
mod waiting;
