//! The table a run trains on, as the training functions share it.

use std::path::Path;

use polars::prelude::DataFrame;

use crate::data::TabularRequest;

/// A table in memory, the file it came from (whose fingerprint the manifest keeps) and what to
/// predict from what.
#[derive(Clone, Copy)]
pub struct TableData<'a> {
    pub df: &'a DataFrame,
    pub source: &'a Path,
    pub request: &'a TabularRequest,
}

impl<'a> TableData<'a> {
    pub fn new(df: &'a DataFrame, source: &'a Path, request: &'a TabularRequest) -> Self {
        Self {
            df,
            source,
            request,
        }
    }
}
