//! TODO: planar
