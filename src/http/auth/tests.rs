//! Unit tests of the gate: identification and policy, without HTTP.
