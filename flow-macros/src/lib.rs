//! flow-macros (in progress)
