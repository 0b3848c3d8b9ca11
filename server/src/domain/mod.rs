//! The server's rules, each stated once, with no SQL and no HTTP: who may read and decide what,
//! the calendar reports and plans are read in, and the secrets handed to devices. Handlers parse
//! a request and call these; storage engines implement the data access they need.

pub mod access;
pub mod calendar;
pub mod chain;
pub mod overview;
pub mod rankings;
pub mod review;
pub mod secrets;
pub mod signin;
pub mod tasks;
pub mod uploads;

/// A comma-separated list from a query or the command line, trimmed, without empty entries.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
