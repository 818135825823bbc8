//! TODO: spline_ar
