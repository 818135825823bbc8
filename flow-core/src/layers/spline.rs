//! TODO: spline
