//! flow-train (in progress)
