//! TODO: spline_coupling
